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
//! about 5× here (short members cost more per byte than long strings), while the quadratic
//! duplicate-name check this file was written against measured 90× to 460× in the same
//! debug build (see each test), growing with the input.
//!
//! Its own test binary: its measurements take turns, and no other test's threads share its
//! process while it measures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod peer_support;
mod support;

use std::hint::black_box;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Uri};
use meshguard::peer::{PeerIdentity, SpiffeId, parse_xfcc};
use meshguard::token::bearer::BearerExtractor;
use meshguard::token::{DEFAULT_MAX_TOKEN_BYTES, Issuer, KeySet, Verifier};
use rcgen::{CertificateParams, SanType};
use support::assemble;

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

/// A token bound four times the default, as a service may configure: the larger the
/// input, the further a quadratic term stands above [`BOUND`].
const MAX_TOKEN_BYTES: usize = 4 * DEFAULT_MAX_TOKEN_BYTES;

/// An HMAC verifier; with two issuers the claims are read before the signature.
fn verifier(issuers: &[&str]) -> Verifier {
    let secret = b"cost-bounds-test-secret-of-32-bytes!";
    let mut builder = Verifier::builder()
        .token_cache(0)
        .max_token_bytes(MAX_TOKEN_BYTES);
    for iss in issuers {
        let keys = KeySet::hmac_secret("k", secret).unwrap();
        builder = builder.issuer(Issuer::new(*iss, keys).allow_any_audience());
    }
    builder.build().unwrap()
}

/// Header or claims JSON that leaves the token within [`MAX_TOKEN_BYTES`].
const JSON_IN_TOKEN: usize = MAX_TOKEN_BYTES / 4 * 3 - 600;

#[test]
fn token_header_cost_is_linear() {
    let verifier = verifier(&["https://a.example"]);
    let payload = r#"{"iss":"https://a.example","exp":4000000000}"#;
    let in_array = |item: fn(usize) -> String| {
        let json = grow(
            r#"{"alg":"HS256","kid":"k","x5c":["#,
            item,
            "]}",
            JSON_IN_TOKEN,
        );
        assemble(&json, payload, &[0; 32])
    };
    let members = |item: fn(usize) -> String| {
        let json = grow(r#"{"alg":"HS256","kid":"k","#, item, "}", JSON_IN_TOKEN);
        assemble(&json, payload, &[0; 32])
    };
    let normal = in_array(element);
    let refused = |token: &str| {
        let reason = verifier.verify(black_box(token)).unwrap_err().reason();
        assert_eq!(reason, "bad_signature");
    };
    // The quadratic duplicate-name check: about 95× for many members.
    for (what, worst) in [
        ("many header members", members(member)),
        ("escaped header members", members(escaped_member)),
        ("nested header arrays", in_array(nested)),
    ] {
        assert!(worst.len().abs_diff(normal.len()) < 64, "{what}");
        assert_linear(what, &mut || refused(&normal), &mut || refused(&worst));
    }
}

#[test]
fn claims_cost_is_linear() {
    // Two issuers: `iss` picks the keys, so the claims are parsed before the signature.
    let verifier = verifier(&["https://a.example", "https://b.example"]);
    // The quadratic duplicate-name check: about 90× for many claims.
    let token = |json: String| assemble(r#"{"alg":"HS256","kid":"k"}"#, &json, &[0; 32]);
    let open = r#"{"iss":"https://a.example","exp":4000000000,"#;
    let normal = token(grow(
        &format!(r#"{open}"groups":["#),
        element,
        "]}",
        JSON_IN_TOKEN,
    ));
    let refused = |token: &str| {
        let reason = verifier.verify(black_box(token)).unwrap_err().reason();
        assert_eq!(reason, "bad_signature");
    };
    for (what, worst) in [
        ("many claims", token(grow(open, member, "}", JSON_IN_TOKEN))),
        (
            "escaped claims",
            token(grow(open, escaped_member, "}", JSON_IN_TOKEN)),
        ),
        (
            "nested claim arrays",
            token(grow(
                &format!(r#"{open}"n":["#),
                nested,
                "]}",
                JSON_IN_TOKEN,
            )),
        ),
    ] {
        assert!(worst.len().abs_diff(normal.len()) < 64, "{what}");
        assert_linear(what, &mut || refused(&normal), &mut || refused(&worst));
    }
}

/// The largest remote document accepted by default.
const DOCUMENT: usize = 256 * 1024;

/// An Ed25519 JWK (a well-formed public key; its value does not matter here).
fn jwk(i: usize) -> String {
    format!(
        r#"{{"kty":"OKP","crv":"Ed25519","kid":"k{i:07}","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}"#
    )
}

#[test]
fn jwks_cost_is_linear() {
    let normal = grow(r#"{"keys":["#, jwk, "]}", DOCUMENT);
    let one_key = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","#;
    let load = |document: &str| {
        KeySet::from_jwks_json(black_box(document.as_bytes())).unwrap();
    };
    // The quadratic duplicate-name check: over 100× for many members.
    for (what, worst) in [
        ("many key members", grow(one_key, member, "}]}", DOCUMENT)),
        (
            "escaped key members",
            grow(one_key, escaped_member, "}]}", DOCUMENT),
        ),
        (
            "many document members",
            grow(r#"{"keys":[],"#, member, "}", DOCUMENT),
        ),
        (
            "nested key members",
            grow(&format!(r#"{one_key}"n":["#), nested, "]}]}", DOCUMENT),
        ),
    ] {
        assert!(worst.len().abs_diff(normal.len()) < 256, "{what}");
        assert_linear(what, &mut || load(&normal), &mut || load(&worst));
    }
}

#[cfg(feature = "remote-jwks")]
#[test]
fn discovery_cost_is_linear() {
    use meshguard::token::remote::discovered_jwks_uri;

    let issuer = "https://idp.example";
    let open = r#"{"issuer":"https://idp.example","jwks_uri":"https://idp.example/keys","#;
    let normal = grow(
        &format!(r#"{open}"scopes_supported":["#),
        element,
        "]}",
        DOCUMENT,
    );
    // The quadratic duplicate-name check: about 460× for many members.
    let read = |document: &str| {
        discovered_jwks_uri(black_box(document.as_bytes()), issuer).unwrap();
    };
    for (what, worst) in [
        ("many discovery members", grow(open, member, "}", DOCUMENT)),
        (
            "escaped discovery members",
            grow(open, escaped_member, "}", DOCUMENT),
        ),
        (
            "nested discovery arrays",
            grow(&format!(r#"{open}"n":["#), nested, "]}", DOCUMENT),
        ),
    ] {
        assert!(worst.len().abs_diff(normal.len()) < 64, "{what}");
        assert_linear(what, &mut || read(&normal), &mut || read(&worst));
    }
}

#[test]
fn bearer_and_cookie_cost_is_linear() {
    let extractor = BearerExtractor::new().cookie("at");
    let uri = Uri::from_static("/orders");
    let headers = |name: &'static str, value: String| {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::try_from(value).unwrap());
        headers
    };
    let size = 8 * 1024;
    let token = "a".repeat(size);
    let normal = headers("cookie", format!("at={token}"));
    let extract = |headers: &HeaderMap| {
        let _ = black_box(extractor.extract(black_box(headers), &uri));
    };
    for (what, worst) in [
        (
            "many cookies",
            headers(
                "cookie",
                grow("", |i| format!("c{i}=v"), "; at=x", size).replace(',', "; "),
            ),
        ),
        (
            "bearer padding",
            headers("authorization", format!("Bearer a{}", "=".repeat(size - 8))),
        ),
    ] {
        assert_linear(what, &mut || extract(&normal), &mut || extract(&worst));
    }
}

#[test]
fn xfcc_cost_is_linear() {
    let hash = "a".repeat(64);
    let size = 24 * 1024;
    // A realistic element whose URL-encoded `Cert` fills the size.
    let normal = format!(
        r#"By=spiffe://td/proxy;Hash={hash};Subject="CN=a, O=b";URI=spiffe://td/web;Cert="{}""#,
        "%2B".repeat(size / 3 - 60)
    );
    let parse = |header: &str| {
        parse_xfcc(black_box(header)).unwrap();
    };
    let many_pairs = (0..16)
        .map(|e| {
            (0..63)
                .map(|p| format!("k{p}=v{e}"))
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect::<Vec<_>>()
        .join(",");
    let escapes = format!(
        r#"By=spiffe://td/proxy;Subject="{}""#,
        r#"\""#.repeat(size / 2 - 40)
    );
    for (what, worst) in [
        ("many xfcc pairs", many_pairs),
        ("escaped xfcc value", escapes),
    ] {
        // Per byte: the pairs fill less than the size, so compare cost per byte.
        let scale = normal.len() as f64 / worst.len() as f64;
        let reps = scale.round().max(1.0) as usize;
        assert_linear(what, &mut || parse(&normal), &mut || {
            for _ in 0..reps {
                parse(&worst);
            }
        });
    }
}

#[test]
fn spiffe_id_cost_is_linear() {
    let size = meshguard::peer::MAX_SPIFFE_ID_LEN;
    let normal = format!("spiffe://example.org/{}", "a".repeat(size - 21));
    let segments = format!("spiffe://example.org{}", "/a".repeat((size - 20) / 2));
    let parse = |id: &str| {
        SpiffeId::new(black_box(id)).unwrap();
    };
    assert_linear("many spiffe segments", &mut || parse(&normal), &mut || {
        parse(&segments)
    });
}

/// A leaf certificate with these DNS and URI SANs, signed by `ca`.
fn certificate(ca: &peer_support::Ca, names: &[String]) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = names
        .iter()
        .flat_map(|name| {
            [
                SanType::DnsName(name.clone().try_into().unwrap()),
                SanType::URI(format!("https://{name}").try_into().unwrap()),
            ]
        })
        .collect();
    ca.sign(&params).der()
}

#[test]
fn certificate_cost_is_linear() {
    let ca = peer_support::Ca::new("example.org");
    // A multi-domain certificate: a few dozen long names, against as many bytes of short ones.
    let long: Vec<String> = (0..73)
        .map(|i| format!("{}{i:03}.example.org", "h".repeat(100)))
        .collect();
    let short: Vec<String> = (0..370).map(|i| format!("h{i:05}.example.org")).collect();
    let (normal, worst) = (certificate(&ca, &long), certificate(&ca, &short));
    assert!(
        worst.len().abs_diff(normal.len()) < 512,
        "{} {}",
        worst.len(),
        normal.len()
    );
    let parse = |der: &[u8]| {
        PeerIdentity::from_der_chain(&[black_box(der)]).unwrap();
    };
    assert_linear("many certificate SANs", &mut || parse(&normal), &mut || {
        parse(&worst)
    });
}

#[test]
fn route_path_cost_is_linear() {
    use meshguard::policy::{HttpInput, HttpMapping};
    // The conventions mapping reads the path with the guard's route model (split, check,
    // percent-decode) and matches the route template: an 8 KiB path of eight-character
    // segments against paths of one-character segments and of nothing but escapes.
    let size = 8 * 1024 - 64;
    let normal = format!(
        "/files/{}",
        "abcdefg/".repeat(size / 8).trim_end_matches('/')
    );
    let segments = format!("/files/{}", "a/".repeat(size / 2).trim_end_matches('/'));
    let escapes = format!("/files/{}", "%C3%A9".repeat(size / 6));
    let mapping = HttpMapping::conventions("files").omit_query();
    let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let map = |path: &str| {
        let uri: Uri = path.parse().unwrap();
        let method = http::Method::GET;
        let input = HttpInput::new(&method, &uri, now).with_route("/files/{*rest}");
        black_box(mapping.map(&input).unwrap());
    };
    for (what, worst) in [
        ("route path: segments", &segments),
        ("route path: escapes", &escapes),
    ] {
        assert!(worst.len() <= normal.len() + 8, "{what}: same size");
        assert_linear(what, &mut || map(&normal), &mut || map(worst));
    }
}
