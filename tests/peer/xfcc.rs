//! XFCC parsing (Envoy's grammar; xfcc.json in full), the trusted-proxy policy and hostile
//! headers (CONFORMANCE 65–70).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;

use http::{HeaderMap, HeaderValue};
use meshguard::peer::{
    Authorizer, DEFAULT_MAX_XFCC_ELEMENTS, DEFAULT_MAX_XFCC_LEN, DirectPeer, ElementSelection,
    IdentitySource, MAX_XFCC_PAIRS, PeerError, PeerIdentity, XFCC_HEADER, XfccError, XfccPolicy,
    parse_xfcc, parse_xfcc_with_limits,
};
use peer_support::Ca;
use serde_json::Value;

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn headers(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(XFCC_HEADER, HeaderValue::from_str(value).unwrap());
    h
}

fn loopback() -> DirectPeer<'static> {
    DirectPeer::tcp("127.0.0.1:5000".parse().unwrap(), None)
}

fn remote() -> DirectPeer<'static> {
    DirectPeer::tcp("192.0.2.10:5000".parse().unwrap(), None)
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_xfcc_vector_passes() {
    let v: Value = serde_json::from_str(include_str!("../data/xfcc/xfcc.json")).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 37);
    for case in cases {
        let name = case["id"].as_str().unwrap();
        let got = parse_xfcc(case["header"].as_str().unwrap());
        let acceptable: Vec<String> = case
            .get("acceptable_outcomes")
            .map(str_list)
            .unwrap_or_else(|| vec![case["expected"].as_str().unwrap().to_owned()]);
        match got {
            Ok(elements) => {
                assert!(acceptable.contains(&"valid".to_owned()), "{name} parsed");
                if case["expected"] != "valid" {
                    // Tolerated alternative (unknown keys are ignored, CONFORMANCE 67).
                    assert_eq!(name, "alec-unknown-key");
                    assert!(elements[0].by().is_empty() && elements[0].uris().is_empty());
                    continue;
                }
                assert_eq!(
                    elements.len() as u64,
                    case["element_count"].as_u64().unwrap()
                );
                for (element, want) in elements.iter().zip(case["elements"].as_array().unwrap()) {
                    let pairs: Vec<(String, String)> = want["pairs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
                        .collect();
                    assert_eq!(element.pairs(), pairs.as_slice(), "{name}");
                    let fields = &want["fields"];
                    if fields.is_null() {
                        continue;
                    }
                    assert_eq!(element.by(), str_list(&fields["By"]).as_slice(), "{name}");
                    assert_eq!(
                        element.uris(),
                        str_list(&fields["URI"]).as_slice(),
                        "{name}"
                    );
                    assert_eq!(element.dns(), str_list(&fields["DNS"]).as_slice(), "{name}");
                    assert_eq!(element.hash(), fields["Hash"].as_str(), "{name}");
                    assert_eq!(element.cert(), fields["Cert"].as_str(), "{name}");
                    assert_eq!(element.chain(), fields["Chain"].as_str(), "{name}");
                    assert_eq!(element.subject(), fields["Subject"].as_str(), "{name}");
                }
            }
            Err(err) => {
                assert!(acceptable.contains(&"invalid".to_owned()), "{name}: {err}");
                let expected = match case["error_class"].as_str().unwrap() {
                    "duplicate_single_valued_key" => "xfcc_duplicate_key",
                    // The only unknown key rejected is one that is not a token (` URI`).
                    "malformed" | "unknown_key" => "xfcc_malformed",
                    other => panic!("{name}: unmapped class {other}"),
                };
                assert_eq!(err.reason(), expected, "{name}");
            }
        }
    }
}

// CONFORMANCE 66
#[test]
fn separators_inside_quotes_do_not_split_and_escapes_unescape() {
    let e = parse_xfcc(r#"Subject="a,b;c=d \"q\" back\\slash";URI=spiffe://td/x"#).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].subject(), Some(r#"a,b;c=d "q" back\slash"#));
    assert_eq!(e[0].uris(), ["spiffe://td/x"]);
    let e = parse_xfcc(r#"Subject="ends with backslash\\""#).unwrap();
    assert_eq!(e[0].subject(), Some(r"ends with backslash\"));
}

// CONFORMANCE 66
#[test]
fn unmatched_quote_rejects_the_header() {
    for header in [
        r#"Subject="abc"#,
        r#"Subject="abc\""#,
        r#"URI=x;Subject=""#,
        r#"Subject=""""#,
    ] {
        let err = parse_xfcc(header).unwrap_err();
        assert_eq!(err.reason(), "xfcc_malformed", "{header}");
    }
}

// CONFORMANCE 67
#[test]
fn keys_are_case_insensitive_unknown_keys_ignored_and_repeats_collected() {
    let e =
        parse_xfcc("uRi=spiffe://td/a;Uri=spiffe://td/b;dns=a;DNS=b;by=p;BY=q;x-extra=1").unwrap();
    assert_eq!(e[0].uris(), ["spiffe://td/a", "spiffe://td/b"]);
    assert_eq!(e[0].dns(), ["a", "b"]);
    assert_eq!(e[0].by(), ["p", "q"]);
    assert_eq!(e[0].pairs().len(), 7);
    for header in [
        "hash=a;HASH=b",
        "Cert=a;cert=b",
        "chain=a;Chain=b",
        "Subject=a;subject=b",
    ] {
        assert_eq!(
            parse_xfcc(header).unwrap_err().reason(),
            "xfcc_duplicate_key",
            "{header}"
        );
    }
}

#[test]
fn header_length_element_count_and_pair_count_are_bounded() {
    let long = format!("URI={}", "a".repeat(DEFAULT_MAX_XFCC_LEN));
    assert_eq!(
        parse_xfcc(&long),
        Err(XfccError::TooLong {
            max: DEFAULT_MAX_XFCC_LEN
        })
    );
    let at_max = vec!["URI=a"; DEFAULT_MAX_XFCC_ELEMENTS].join(",");
    assert_eq!(
        parse_xfcc(&at_max).unwrap().len(),
        DEFAULT_MAX_XFCC_ELEMENTS
    );
    let over = format!("{at_max},URI=a");
    assert_eq!(
        parse_xfcc(&over),
        Err(XfccError::TooManyElements {
            max: DEFAULT_MAX_XFCC_ELEMENTS
        })
    );
    let pairs = vec!["DNS=a"; MAX_XFCC_PAIRS + 1].join(";");
    assert_eq!(
        parse_xfcc(&pairs),
        Err(XfccError::TooManyPairs {
            max: MAX_XFCC_PAIRS
        })
    );
    assert_eq!(
        parse_xfcc_with_limits("URI=a,URI=b", 100, 1),
        Err(XfccError::TooManyElements { max: 1 })
    );
    assert_eq!(
        parse_xfcc_with_limits("URI=abc", 3, 1),
        Err(XfccError::TooLong { max: 3 })
    );
}

#[test]
fn hostile_headers_are_rejected_without_panicking() {
    let hostile = [
        "=",
        "==",
        ";",
        ",",
        ";;",
        "URI",
        "URI=a;;DNS=b",
        "URI=a,,",
        "\"URI\"=a",
        "URI=a\u{0}b",
        "URI=a\r\nX-Admin: 1",
        "URI=a\tb",
        "U RI=a",
        "URI=a\"b\"",
        "Subject=\"x\"\"y\"",
        "Subject=\"\\",
        "Subject=\"\\\\\\\"",
        "é=1",
    ];
    for header in hostile {
        let err = parse_xfcc(header).unwrap_err();
        assert_eq!(err.reason(), "xfcc_malformed", "{header:?}");
    }
    let deep = "Subject=\"".to_owned() + &"\\\"".repeat(10_000) + "\"";
    assert_eq!(
        parse_xfcc(&deep).unwrap()[0].subject().unwrap().len(),
        10_000
    );
    let many_quotes = "\"".repeat(DEFAULT_MAX_XFCC_LEN);
    assert!(parse_xfcc(&many_quotes).is_err());
}

#[test]
fn equals_sign_in_an_unquoted_uri_is_kept() {
    // Envoy writes URI SANs unquoted.
    let e = parse_xfcc("URI=https://example.org/app?tenant=a;DNS=a.example").unwrap();
    assert_eq!(e[0].uris(), ["https://example.org/app?tenant=a"]);
    assert_eq!(e[0].dns(), ["a.example"]);
}

#[test]
fn empty_header_has_no_elements_and_no_identity() {
    assert!(parse_xfcc("").unwrap().is_empty());
    let policy = XfccPolicy::builder().trust_loopback().build();
    assert_eq!(
        policy.resolve(&loopback(), &headers("")),
        Err(PeerError::XfccElementMissing)
    );
}

const HASH: &str = "e0f3c8ce5e2ea305f0701ff512e36e2e97928284a228bcf77332d33930a1b6fd";

// CONFORMANCE 65
#[test]
fn policy_is_off_by_default_and_ignores_the_header() {
    let h = headers(&format!("Hash={HASH};URI=spiffe://td/attacker"));
    assert_eq!(XfccPolicy::disabled().resolve(&loopback(), &h), Ok(None));
    assert_eq!(XfccPolicy::default().resolve(&remote(), &h), Ok(None));
    assert_eq!(
        XfccPolicy::builder().build().resolve(&loopback(), &h),
        Ok(None)
    );
}

// CONFORMANCE 65
#[test]
fn untrusted_peer_keeps_its_own_identity_and_the_header_can_be_stripped_or_rejected() {
    let ca = Ca::new("td");
    let own = PeerIdentity::from_der_chain(&[ca.svid("spiffe://td/client").der()]).unwrap();
    let direct = DirectPeer::tcp("192.0.2.1:1".parse().unwrap(), Some(&own));
    let mut h = headers(&format!("Hash={HASH};URI=spiffe://td/admin"));
    let policy = XfccPolicy::builder()
        .trust_proxies(Authorizer::id("spiffe://td/proxy".parse().unwrap()))
        .build();
    assert_eq!(policy.resolve(&direct, &h), Ok(Some(own.clone())));

    let strict = XfccPolicy::builder()
        .trust_proxies(Authorizer::id("spiffe://td/proxy".parse().unwrap()))
        .reject_untrusted_header()
        .build();
    let err = strict.resolve(&direct, &h).unwrap_err();
    assert_eq!(err.reason(), "xfcc_untrusted");

    assert!(policy.strip_untrusted(&direct, &mut h));
    assert!(h.get(XFCC_HEADER).is_none());
    assert_eq!(strict.resolve(&direct, &h), Ok(Some(own)));
}

// CONFORMANCE 65
#[test]
fn trusted_proxy_by_mtls_identity_forwards_its_client() {
    let ca = Ca::new("td");
    let proxy = PeerIdentity::from_der_chain(&[ca.svid("spiffe://td/proxy").der()]).unwrap();
    let direct = DirectPeer::tcp("192.0.2.1:1".parse().unwrap(), Some(&proxy));
    let policy = XfccPolicy::builder()
        .trust_proxies(Authorizer::id("spiffe://td/proxy".parse().unwrap()))
        .build();
    let mut h = headers(&format!(
        "By=spiffe://td/proxy;Hash={HASH};URI=spiffe://td/client"
    ));
    let caller = policy.resolve(&direct, &h).unwrap().unwrap();
    assert_eq!(caller.spiffe_id().unwrap().as_str(), "spiffe://td/client");
    assert_eq!(caller.source(), IdentitySource::Xfcc);
    assert_eq!(hex(caller.sha256()), HASH);
    assert!(!policy.strip_untrusted(&direct, &mut h));

    // A trusted proxy without header forwards no client: never its own identity.
    assert_eq!(policy.resolve(&direct, &HeaderMap::new()), Ok(None));
    // Loopback is not trusted unless asked for.
    assert_eq!(policy.resolve(&loopback(), &h), Ok(None));
}

#[test]
fn loopback_and_unix_socket_trust_is_opt_in() {
    let policy = XfccPolicy::builder().trust_loopback().build();
    let h = headers(&format!("Hash={HASH};URI=spiffe://td/client"));
    for direct in [
        loopback(),
        DirectPeer::tcp("127.9.9.9:1".parse().unwrap(), None),
        DirectPeer::tcp("[::1]:1".parse().unwrap(), None),
        DirectPeer::tcp("[::ffff:127.0.0.1]:1".parse().unwrap(), None),
        DirectPeer::unix(None),
    ] {
        assert!(policy.is_trusted_proxy(&direct), "{direct:?}");
        assert!(policy.resolve(&direct, &h).unwrap().is_some());
    }
    for direct in [
        remote(),
        DirectPeer::tcp("[2001:db8::1]:1".parse().unwrap(), None),
        DirectPeer::tcp("0.0.0.0:1".parse().unwrap(), None),
    ] {
        assert!(!policy.is_trusted_proxy(&direct), "{direct:?}");
        assert_eq!(policy.resolve(&direct, &h), Ok(None));
    }
}

// CONFORMANCE 68
#[test]
fn rightmost_element_is_the_default_not_envoys_leftmost() {
    let h = headers(&format!(
        "Hash={HASH};URI=spiffe://td/forged-by-client,Hash={HASH};URI=spiffe://td/real"
    ));
    let default = XfccPolicy::builder().trust_loopback().build();
    let who = |p: &XfccPolicy| {
        p.resolve(&loopback(), &h)
            .unwrap()
            .unwrap()
            .spiffe_id()
            .unwrap()
            .path()
            .to_owned()
    };
    assert_eq!(who(&default), "/real");
    let two_hops = XfccPolicy::builder()
        .trust_loopback()
        .select(ElementSelection::FromRight(2))
        .build();
    assert_eq!(who(&two_hops), "/forged-by-client");
    let leftmost = XfccPolicy::builder()
        .trust_loopback()
        .select(ElementSelection::Leftmost)
        .build();
    assert_eq!(who(&leftmost), "/forged-by-client");
    let too_far = XfccPolicy::builder()
        .trust_loopback()
        .select(ElementSelection::FromRight(3))
        .build();
    assert_eq!(
        too_far.resolve(&loopback(), &h),
        Err(PeerError::XfccElementMissing)
    );
}

// CONFORMANCE 69
#[test]
fn empty_or_multiple_uris_yield_no_spiffe_identity() {
    let policy = XfccPolicy::builder().trust_loopback().build();
    let resolve = |v: &str| policy.resolve(&loopback(), &headers(v)).unwrap().unwrap();
    let empty = resolve(&format!("Hash={HASH};URI="));
    assert_eq!(empty.spiffe_id(), None);
    assert!(empty.uris().is_empty());
    let two = resolve(&format!("Hash={HASH};URI=spiffe://td/a;URI=spiffe://td/b"));
    assert_eq!(two.spiffe_id(), None);
    assert_eq!(two.uris().len(), 2);
    let other = resolve(&format!(
        "Hash={HASH};URI=https://td/a;DNS=a.example;Subject=\"CN=a\""
    ));
    assert_eq!(other.spiffe_id(), None);
    assert_eq!(other.dns_names(), ["a.example"]);
    assert_eq!(other.subject(), Some("CN=a"));
    assert_eq!(other.common_name(), None);
    assert_eq!(other.serial(), None);
    assert!(Authorizer::any().authorize(&other).is_err());
}

#[test]
fn forwarded_spiffe_id_must_be_a_valid_workload_id() {
    let policy = XfccPolicy::builder().trust_loopback().build();
    let resolve = |v: &str| policy.resolve(&loopback(), &headers(v));
    assert_eq!(
        resolve(&format!("Hash={HASH};URI=spiffe://td/../x"))
            .unwrap_err()
            .reason(),
        "invalid_spiffe_id"
    );
    assert_eq!(
        resolve(&format!("Hash={HASH};URI=spiffe://td")),
        Err(PeerError::LeafRootPath)
    );
}

#[test]
fn element_without_hash_or_cert_and_bad_hashes_are_rejected() {
    let policy = XfccPolicy::builder().trust_loopback().build();
    let resolve = |v: &str| policy.resolve(&loopback(), &headers(v));
    assert_eq!(
        resolve("URI=spiffe://td/x"),
        Err(PeerError::XfccNoCertificate)
    );
    for hash in [
        "abcdefg",
        "xyz",
        &HASH[1..],
        &format!("{HASH}0"),
        &"g".repeat(64),
    ] {
        assert_eq!(
            resolve(&format!("Hash={hash};URI=spiffe://td/x")),
            Err(PeerError::XfccBadHash),
            "{hash}"
        );
    }
}

#[test]
fn multiple_header_fields_from_a_trusted_proxy_are_rejected() {
    let policy = XfccPolicy::builder().trust_loopback().build();
    let mut h = headers(&format!("Hash={HASH};URI=spiffe://td/a"));
    h.append(
        XFCC_HEADER,
        HeaderValue::from_str(&format!("Hash={HASH};URI=spiffe://td/b")).unwrap(),
    );
    assert_eq!(
        policy.resolve(&loopback(), &h),
        Err(PeerError::XfccMultipleHeaders)
    );
}

#[test]
fn non_ascii_header_bytes_are_malformed() {
    let policy = XfccPolicy::builder().trust_loopback().build();
    let mut h = HeaderMap::new();
    h.insert(XFCC_HEADER, HeaderValue::from_bytes(b"URI=\xff").unwrap());
    assert_eq!(
        policy.resolve(&loopback(), &h).unwrap_err().reason(),
        "xfcc_malformed"
    );
}

// CONFORMANCE 70
#[test]
fn cert_is_url_decoded_pem_parsed_and_checked_against_hash() {
    let ca = Ca::new("td");
    let leaf = ca.svid("spiffe://td/client");
    let digest = hex(ring::digest::digest(&ring::digest::SHA256, &leaf.der()).as_ref());
    let cert = url_encode(&leaf.cert_pem());
    let chain = url_encode(&format!("{}{}", leaf.cert_pem(), ca.pem()));
    let policy = XfccPolicy::builder().trust_loopback().build();
    let resolve = |v: &str| policy.resolve(&loopback(), &headers(v));

    let with_hash = resolve(&format!(
        "By=spiffe://td/proxy;Hash={digest};Cert=\"{cert}\";Chain=\"{chain}\";URI=spiffe://td/ignored"
    ))
    .unwrap()
    .unwrap();
    let direct = PeerIdentity::from_der_chain(&[leaf.der()]).unwrap();
    assert_eq!(with_hash.spiffe_id(), direct.spiffe_id());
    assert_eq!(with_hash.x5t_s256(), direct.x5t_s256());
    assert_eq!(with_hash.serial(), direct.serial());
    assert_eq!(with_hash.common_name(), Some("workload"));
    assert_eq!(with_hash.source(), IdentitySource::Xfcc);

    let upper = resolve(&format!("Hash={};Cert=\"{cert}\"", digest.to_uppercase()));
    assert!(upper.unwrap().is_some());
    let no_hash = resolve(&format!("Cert=\"{cert}\"")).unwrap().unwrap();
    assert_eq!(no_hash.sha256(), direct.sha256());

    assert_eq!(
        resolve(&format!("Hash={HASH};Cert=\"{cert}\"")),
        Err(PeerError::XfccHashMismatch)
    );
    let other = url_encode(&ca.svid("spiffe://td/other").cert_pem());
    assert_eq!(
        resolve(&format!("Cert=\"{cert}\";Chain=\"{other}\"")),
        Err(PeerError::XfccChainMismatch)
    );
    for bad in ["%ZZ", "abc%4", "%3D%3Dabc%0Ade%3D", ""] {
        assert_eq!(
            resolve(&format!("Cert=\"{bad}\"")),
            Err(PeerError::XfccBadCertEncoding),
            "{bad}"
        );
    }
    let two = url_encode(&format!("{}{}", leaf.cert_pem(), ca.pem()));
    assert_eq!(
        resolve(&format!("Cert=\"{two}\"")),
        Err(PeerError::XfccBadCertEncoding)
    );
}

#[test]
fn forwarded_cert_obeys_the_svid_rules() {
    let ca = Ca::new("td");
    let mut params = peer_support::svid_params("spiffe://td/x");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = url_encode(&ca.sign(&params).cert_pem());
    let policy = XfccPolicy::builder().trust_loopback().build();
    assert_eq!(
        policy.resolve(&loopback(), &headers(&format!("Cert=\"{cert}\""))),
        Err(PeerError::LeafIsCa)
    );
}
