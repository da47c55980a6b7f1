//! JSON documents from remote parties: key sets, discovery, SPIFFE bundles, introspection
//! and token endpoint answers, and the `Cache-Control` of key sets.

use std::hint::black_box;

use meshguard::token::KeySet;

use crate::{
    assert_linear, assert_scales_linearly, escaped_member, grow, member, nested, normal_object,
    worst_objects,
};

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
    let normal = normal_object(open, "scopes_supported", DOCUMENT);
    // The quadratic duplicate-name check: about 460× for many members.
    let read = |document: &str| {
        discovered_jwks_uri(black_box(document.as_bytes()), issuer).unwrap();
    };
    for (what, worst) in worst_objects("discovery", open, DOCUMENT) {
        assert!(worst.len().abs_diff(normal.len()) < 64, "{what}");
        assert_linear(&what, &mut || read(&normal), &mut || read(&worst));
    }
}

#[test]
fn spiffe_bundle_cost_is_linear() {
    use meshguard::peer::TrustDomain;
    use meshguard::token::jwt_svid::SpiffeBundle;

    let size = 64 * 1024;
    let key = r#"{"use":"jwt-svid","kty":"EC","crv":"P-256","kid":"k1","x":"64Mm92hnvqSdLxl6XQVu32-3rydodal1S8JgGYg5AGk","y":"x5hVyA9Z4OgQxpvkhTXwNsZACk1jz1xyuTDr6JdH3R0""#;
    let open = format!(r#"{{"spiffe_sequence":1,"keys":[{key}}}],"#);
    let trust_domain = TrustDomain::new("example.org").unwrap();
    let read = |document: &str| {
        let bundle =
            SpiffeBundle::from_json(trust_domain.clone(), black_box(document.as_bytes())).unwrap();
        assert_eq!(bundle.jwt_authorities().len(), 1);
    };
    // A bundle whose bulk is one array of strings, against the worst of the same size.
    let normal = normal_object(&open, "x", size);
    for (what, worst) in worst_objects("bundle", &open, size) {
        assert!(worst.len().abs_diff(normal.len()) < 64, "{what}");
        assert_linear(&what, &mut || read(&normal), &mut || read(&worst));
    }
    // A `jwt-svid` entry's members are kept in a map, then written and read again as a JWK:
    // about 10× a byte of the normal bundle in a debug build, and growing as n·log n. Only
    // the growth with size is compared.
    let key_members = |size: usize| grow(&format!(r#"{{"keys":[{key},"#), member, "}]}", size);
    assert_scales_linearly("many bundle key members", key_members, read, size);
}

#[cfg(feature = "remote-jwks")]
#[test]
fn cache_control_cost_is_linear() {
    use std::time::Duration;

    use meshguard::token::remote::RemoteJwks;

    let remote = RemoteJwks::url("https://idp.example/jwks");
    let size = 8 * 1024;
    // A long header of directives as servers write them, the last `max-age` counting.
    let normal = grow(
        "",
        |i| {
            [
                "public",
                "max-age=900",
                "stale-while-revalidate=60",
                "must-revalidate",
            ][i % 4]
                .to_owned()
        },
        "",
        size,
    );
    let lifetime = |value: &str| {
        black_box(remote.cache_lifetime(Some(black_box(value))));
    };
    assert_eq!(
        remote.cache_lifetime(Some(&normal)),
        Duration::from_secs(900)
    );
    for (what, worst) in [
        (
            "many cache directives",
            grow("", |_| "a".to_owned(), "", size),
        ),
        (
            "repeated max-age",
            grow("", |i| format!("max-age={}", 900 + i % 10), "", size),
        ),
    ] {
        assert!(worst.len().abs_diff(normal.len()) < 16, "{what}");
        assert_linear(what, &mut || lifetime(&normal), &mut || lifetime(&worst));
    }
}

#[cfg(feature = "introspection")]
#[test]
fn introspection_response_cost_is_linear() {
    use meshguard::token::introspection::{DEFAULT_MAX_RESPONSE_BYTES, read_response};

    let size = DEFAULT_MAX_RESPONSE_BYTES;
    let open = r#"{"active":true,"sub":"u1","exp":4000000000,"#;
    let read = |body: &str| {
        let token = read_response(black_box(body.as_bytes())).unwrap();
        assert_eq!(token.subject(), Some("u1"));
    };
    let normal = normal_object(open, "groups", size);
    for (what, worst) in worst_objects("introspection", open, size) {
        assert!(worst.len().abs_diff(normal.len()) < 64, "{what}");
        assert_linear(&what, &mut || read(&normal), &mut || read(&worst));
    }
}

#[cfg(feature = "outgoing")]
#[test]
fn token_response_cost_is_linear() {
    use meshguard::outgoing::{MAX_TOKEN_RESPONSE_BYTES, read_token_response};

    let size = MAX_TOKEN_RESPONSE_BYTES - 64;
    let open = r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":300,"#;
    let read = |body: &str| {
        let issued = read_token_response(black_box(body.as_bytes())).unwrap();
        assert_eq!(issued.expires_in(), 300);
    };
    let normal = normal_object(open, "scopes", size);
    for (what, worst) in worst_objects("token response", open, size) {
        assert!(worst.len().abs_diff(normal.len()) < 64, "{what}");
        assert_linear(&what, &mut || read(&normal), &mut || read(&worst));
    }
}
