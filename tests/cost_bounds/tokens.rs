//! Tokens, bearer and cookie headers, DPoP proofs.

use std::hint::black_box;

use http::{HeaderMap, HeaderValue, Uri};
use meshguard::token::bearer::BearerExtractor;
use meshguard::token::{DEFAULT_MAX_TOKEN_BYTES, Issuer, KeySet, Verifier};

use crate::support::assemble;
use crate::{assert_linear, element, escaped_member, grow, member, nested};

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

/// A DPoP verifier with a proof bound four times the default, on a fixed clock.
fn dpop_verifier(now: i64) -> meshguard::token::dpop::DpopVerifier {
    use meshguard::token::FixedClock;
    use meshguard::token::dpop::DpopVerifier;
    let keys = KeySet::hmac_secret("k", b"cost-bounds-test-secret-of-32-bytes!").unwrap();
    let verifier = Verifier::builder()
        .issuer(Issuer::new("https://a.example", keys).allow_any_audience())
        .clock(std::sync::Arc::new(FixedClock(now)))
        .build()
        .unwrap();
    DpopVerifier::builder(verifier)
        .max_proof_bytes(MAX_PROOF_BYTES)
        .build()
        .unwrap()
}

const MAX_PROOF_BYTES: usize = 4 * meshguard::token::dpop::DEFAULT_MAX_PROOF_BYTES;

/// Proof header or claims JSON that leaves the proof within [`MAX_PROOF_BYTES`].
const JSON_IN_PROOF: usize = MAX_PROOF_BYTES / 4 * 3 - 600;

#[test]
fn dpop_proof_cost_is_linear() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use meshguard::token::dpop::DpopError;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    const NOW: i64 = 1_800_000_000;
    const URI: &str = "https://api.example/orders";
    let dpop = dpop_verifier(NOW);
    // TEST-ONLY key: a fixed seed so the proofs are the same in every run.
    let pair = Ed25519KeyPair::from_seed_unchecked(b"cost-bounds-dpop-ed25519-seed-01").unwrap();
    let x = URL_SAFE_NO_PAD.encode(pair.public_key());
    let header_open = format!(
        r#"{{"typ":"dpop+jwt","alg":"EdDSA","jwk":{{"kty":"OKP","crv":"Ed25519","x":"{x}"}},"#
    );
    const TOKEN: &str = "not-a-jwt";
    let ath = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        TOKEN.as_bytes(),
    ));
    let claims_open =
        format!(r#"{{"jti":"j1","htm":"POST","htu":"{URI}","iat":{NOW},"ath":"{ath}","#);
    // Signed, so that the claims are read too; the access token is not a JWT, so every proof
    // ends in the same refusal after all its own checks.
    let proof = |header: &str, claims: &str| {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()));
        let proof = format!("{input}.{signature}");
        assert!(proof.len() <= MAX_PROOF_BYTES, "{}", proof.len());
        proof
    };
    let small_header = format!(r#"{header_open}"n":0}}"#);
    let small_claims = format!(r#"{claims_open}"n":0}}"#);
    // A proof whose header or claims open with `open` and end in members made by `item`
    // (in an array when `array`), the other part small.
    let proof_with = |in_header: bool, item: fn(usize) -> String, array: bool| {
        let open = if in_header {
            &header_open
        } else {
            &claims_open
        };
        let json = if array {
            grow(&format!(r#"{open}"n":["#), item, "]}", JSON_IN_PROOF / 2)
        } else {
            grow(open, item, "}", JSON_IN_PROOF / 2)
        };
        if in_header {
            proof(&json, &small_claims)
        } else {
            proof(&small_header, &json)
        }
    };
    let refused = |proof: &str| {
        let error = dpop
            .verify(TOKEN, black_box(proof), "POST", URI)
            .unwrap_err();
        assert!(matches!(error, DpopError::Token(_)), "{error:?}");
    };
    // Each part's worst inputs against the proof whose bulk is in that part.
    let (normal_header, normal_claims) = (
        proof_with(true, element, true),
        proof_with(false, element, true),
    );
    for (what, normal, worst) in [
        (
            "many proof header members",
            &normal_header,
            proof_with(true, member, false),
        ),
        (
            "escaped proof header members",
            &normal_header,
            proof_with(true, escaped_member, false),
        ),
        (
            "nested proof header arrays",
            &normal_header,
            proof_with(true, nested, true),
        ),
        (
            "many proof claims",
            &normal_claims,
            proof_with(false, member, false),
        ),
        (
            "escaped proof claims",
            &normal_claims,
            proof_with(false, escaped_member, false),
        ),
        (
            "nested proof claim arrays",
            &normal_claims,
            proof_with(false, nested, true),
        ),
    ] {
        assert!(worst.len().abs_diff(normal.len()) < 96, "{what}");
        assert_linear(what, &mut || refused(normal), &mut || refused(&worst));
    }
}
