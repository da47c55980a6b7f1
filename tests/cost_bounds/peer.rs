//! Peer identity: XFCC, SPIFFE IDs, certificates, forwarding headers, SVID PEM.

use std::hint::black_box;

use meshguard::peer::{PeerIdentity, SpiffeId, parse_xfcc};
use rcgen::{CertificateParams, SanType};

use crate::{assert_linear, assert_scales_linearly, grow, peer_support};

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
fn forwarded_cost_is_linear() {
    use std::net::{IpAddr, Ipv4Addr};

    use http::header::FORWARDED;
    use http::{HeaderMap, HeaderValue};
    use meshguard::peer::{DEFAULT_MAX_FORWARDED_LEN, ForwardedAddress};

    let size = DEFAULT_MAX_FORWARDED_LEN;
    let headers = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED, HeaderValue::from_str(value).unwrap());
        headers
    };
    let client = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 60)));
    let address = ForwardedAddress::forwarded();
    let resolve = |headers: &HeaderMap| {
        assert_eq!(address.resolve(black_box(headers)).unwrap(), client);
    };
    let normal = headers(&format!(
        r#"for=192.0.2.60;proto=https;host="{}""#,
        "h".repeat(size - 39)
    ));
    // Elements with as many parameters as one may have (16), as many as fit in the size
    // (30, under the bound of 32); and one value whose every byte is escaped.
    let element = |i: usize| {
        let parameters: Vec<String> = (1..16).map(|p| format!("p{p:02}={i:03}")).collect();
        format!("for=192.0.2.60;{}", parameters.join(";"))
    };
    let many = grow("", element, "", size - 140);
    let escaped = format!(r#"for=192.0.2.60;host="{}""#, r"\h".repeat((size - 24) / 2));
    for (what, worst) in [
        ("many forwarded parameters", many),
        ("escaped forwarded value", escaped),
    ] {
        let normal_length = normal.get(FORWARDED).unwrap().len();
        assert!(
            worst.len().abs_diff(normal_length) < 160,
            "{what}: {}",
            worst.len()
        );
        let worst = headers(&worst);
        assert_linear(what, &mut || resolve(&normal), &mut || resolve(&worst));
    }
}

#[cfg(feature = "rustls")]
#[test]
fn svid_pem_cost_is_linear() {
    use meshguard::peer::X509Update;

    let ca = peer_support::Ca::new("example.org");
    let leaf = ca.svid("spiffe://example.org/api");
    let (chain, key) = (leaf.cert_pem(), leaf.key_pem());
    let read = |pem: &str| {
        black_box(X509Update::from_pem(black_box(pem.as_bytes()), key.as_bytes()).unwrap());
    };
    // Every line and every block around the certificate costs an allocation or more (an
    // empty line about 30×, an empty block about 15× a byte of a line of text in a debug
    // build): only the growth with size is compared. The chain and a trust bundle are read
    // by the same reader with different bounds; both are measured.
    let update = || X509Update::from_pem(chain.as_bytes(), key.as_bytes()).unwrap();
    let bundle = |pem: &str| {
        black_box(
            update()
                .with_bundle_pem("example.org".parse().unwrap(), black_box(pem.as_bytes()))
                .unwrap(),
        );
    };
    for (what, unit) in [
        ("many pem lines", "\n"),
        ("many pem blocks", "-----BEGIN X-----\n-----END X-----\n"),
    ] {
        let fill = |size: usize| {
            format!(
                "{}{chain}",
                unit.repeat(size.saturating_sub(chain.len()) / unit.len())
            )
        };
        assert_scales_linearly(what, fill, read, 512 * 1024);
        assert_scales_linearly(&format!("{what} (bundle)"), fill, bundle, 512 * 1024);
    }
}
