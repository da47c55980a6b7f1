//! The forwarding-header parsers: what they accept, and a negative suite of what they refuse.

use super::*;
use http::HeaderValue;

fn resolve(
    address: ForwardedAddress,
    name: &str,
    fields: &[&[u8]],
) -> Result<Option<IpAddr>, ForwardedError> {
    let mut headers = HeaderMap::new();
    let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
    for field in fields {
        headers.append(&name, HeaderValue::from_bytes(field).unwrap());
    }
    address.resolve(&headers)
}

fn xff(field: &str, hops: usize) -> Result<Option<IpAddr>, ForwardedError> {
    let address = ForwardedAddress::x_forwarded_for().hops(hops);
    resolve(address, "x-forwarded-for", &[field.as_bytes()])
}

fn fwd(field: &str, hops: usize) -> Result<Option<IpAddr>, ForwardedError> {
    let address = ForwardedAddress::forwarded().hops(hops);
    resolve(address, "forwarded", &[field.as_bytes()])
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

#[track_caller]
fn assert_malformed(result: Result<Option<IpAddr>, ForwardedError>, what: &str) {
    match result {
        Err(ForwardedError::Malformed { what: got, .. }) => assert_eq!(got, what),
        other => panic!("expected `{what}`, got {other:?}"),
    }
}

#[test]
fn x_forwarded_for_is_read_from_the_right() {
    let header = "198.51.100.7, 203.0.113.9,\t192.0.2.1";
    assert_eq!(xff(header, 1).unwrap(), ip("192.0.2.1"));
    assert_eq!(xff(header, 2).unwrap(), ip("203.0.113.9"));
    assert_eq!(xff(header, 3).unwrap(), ip("198.51.100.7"));
    assert_eq!(xff(header, 4).unwrap(), None);
    assert_eq!(xff(header, 0).unwrap(), None);
}

#[test]
fn x_forwarded_for_entries_take_ports_brackets_and_unknown() {
    assert_eq!(xff("192.0.2.1:8080", 1).unwrap(), ip("192.0.2.1"));
    assert_eq!(xff("2001:db8::1", 1).unwrap(), ip("2001:db8::1"));
    assert_eq!(xff("[2001:db8::1]", 1).unwrap(), ip("2001:db8::1"));
    assert_eq!(xff("[2001:db8::1]:443", 1).unwrap(), ip("2001:db8::1"));
    assert_eq!(xff("192.0.2.1, unknown", 1).unwrap(), None);
    assert_eq!(xff("UNKNOWN", 1).unwrap(), None);
    assert_eq!(xff("::ffff:203.0.113.9", 1).unwrap(), ip("203.0.113.9"));
}

#[test]
fn several_fields_are_one_list_in_order() {
    let address = ForwardedAddress::x_forwarded_for();
    let fields: &[&[u8]] = &[b"198.51.100.7", b"203.0.113.9, 192.0.2.1"];
    assert_eq!(
        resolve(address, "x-forwarded-for", fields).unwrap(),
        ip("192.0.2.1")
    );
    assert_eq!(
        resolve(address.hops(3), "x-forwarded-for", fields).unwrap(),
        ip("198.51.100.7")
    );
}

#[test]
fn an_absent_header_names_no_client() {
    assert_eq!(
        ForwardedAddress::forwarded()
            .resolve(&HeaderMap::new())
            .unwrap(),
        None
    );
    // Each kind reads its own header only.
    assert_eq!(
        resolve(
            ForwardedAddress::forwarded(),
            "x-forwarded-for",
            &[b"192.0.2.1"]
        )
        .unwrap(),
        None
    );
    assert_eq!(
        resolve(
            ForwardedAddress::x_forwarded_for(),
            "forwarded",
            &[b"for=192.0.2.1"]
        )
        .unwrap(),
        None
    );
}

#[test]
fn malformed_x_forwarded_for_is_refused() {
    for (header, what) in [
        ("", "empty entry"),
        ("192.0.2.1,", "empty entry"),
        (",192.0.2.1", "empty entry"),
        ("192.0.2.1,,192.0.2.2", "empty entry"),
        (" , ", "empty entry"),
        ("192.0.2", "entry is not an IP address"),
        ("192.0.2.1.5", "entry is not an IP address"),
        ("192.0.2.01", "entry is not an IP address"),
        ("256.0.2.1", "entry is not an IP address"),
        ("example.com", "entry is not an IP address"),
        ("192.0.2.1:", "entry is not an IP address"),
        ("192.0.2.1:123456", "entry is not an IP address"),
        ("192.0.2.1:http", "entry is not an IP address"),
        ("192.0.2.1:80:80", "entry is not an IP address"),
        ("[2001:db8::1", "entry is not an IP address"),
        ("[2001:db8::1]x", "entry is not an IP address"),
        ("[2001:db8::1]:", "entry is not an IP address"),
        ("[192.0.2.1]", "entry is not an IP address"),
        ("fe80::1%eth0", "entry is not an IP address"),
        ("192.0.2.1 192.0.2.2", "entry is not an IP address"),
        ("_hidden", "entry is not an IP address"),
        ("192.0.2.1;for=x", "entry is not an IP address"),
    ] {
        assert_malformed(xff(header, 1), what);
    }
    // Also left of the entry used: the whole header must parse.
    assert_malformed(xff("garbage, 192.0.2.1", 1), "entry is not an IP address");
}

#[test]
fn forwarded_reads_for_of_each_element_from_the_right() {
    let header = r#"for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https, by=10.0.0.1"#;
    // The last element has no `for`: its proxy did not name the client.
    assert_eq!(fwd(header, 1).unwrap(), None);
    assert_eq!(fwd(header, 2).unwrap(), ip("2001:db8:cafe::17"));
    assert_eq!(fwd(header, 3).unwrap(), ip("192.0.2.43"));
    assert_eq!(fwd(header, 4).unwrap(), None);
}

#[test]
fn forwarded_nodes_follow_rfc_7239() {
    assert_eq!(
        fwd("for=192.0.2.60;proto=http;by=203.0.113.43", 1).unwrap(),
        ip("192.0.2.60")
    );
    assert_eq!(
        fwd(r#"For="192.0.2.60:8080""#, 1).unwrap(),
        ip("192.0.2.60")
    );
    assert_eq!(fwd(r#"for="[::1]:_port""#, 1).unwrap(), ip("::1"));
    assert_eq!(fwd(r#"for="\192.0.2.60""#, 1).unwrap(), ip("192.0.2.60"));
    assert_eq!(fwd("for=unknown", 1).unwrap(), None);
    assert_eq!(fwd(r#"for="UNKNOWN:80""#, 1).unwrap(), None);
    assert_eq!(fwd("for=_hidden", 1).unwrap(), None);
    assert_eq!(fwd(r#"for="_SEVKISEK:_x-y.z""#, 1).unwrap(), None);
    assert_eq!(
        fwd("for=192.0.2.1 ; proto=http", 1).unwrap(),
        ip("192.0.2.1")
    );
    assert_eq!(
        fwd(r#"host="a,b;c";for=192.0.2.1"#, 1).unwrap(),
        ip("192.0.2.1")
    );
    assert_eq!(
        fwd(r#"for="[::ffff:192.0.2.1]""#, 1).unwrap(),
        ip("192.0.2.1")
    );
}

#[test]
fn malformed_forwarded_is_refused() {
    for (header, what) in [
        ("", "expected a parameter name"),
        ("for=192.0.2.1,", "expected a parameter name"),
        ("for=192.0.2.1,,for=192.0.2.2", "expected a parameter name"),
        ("for=192.0.2.1;", "expected a parameter name"),
        ("for=192.0.2.1;;proto=http", "expected a parameter name"),
        ("=192.0.2.1", "expected a parameter name"),
        ("for", "expected `=`"),
        ("for =192.0.2.1", "expected `=`"),
        ("for= 192.0.2.1", "empty value"),
        ("for=", "empty value"),
        (r#"for="""#, "empty value"),
        ("for=[2001:db8::1]", "empty value"),
        ("for=192.0.2.1 proto=http", "expected `,` or the end"),
        (r#"for="192.0.2.1"x"#, "expected `,` or the end"),
        (r#"for="192.0.2.1"#, "unterminated quoted string"),
        (
            "for=192.0.2.1;for=192.0.2.2",
            "parameter repeated in one element",
        ),
        (
            "for=192.0.2.1;FOR=192.0.2.2",
            "parameter repeated in one element",
        ),
        (
            "proto=http;Proto=https",
            "parameter repeated in one element",
        ),
        (r#"for="2001:db8::1""#, "`for` is not a node"),
        (r#"for="[2001:db8::1]:123456""#, "`for` is not a node"),
        (r#"for="[2001:db8::1]:_""#, "`for` is not a node"),
        (r#"for="[2001:db8::1]80""#, "`for` is not a node"),
        (r#"for="[2001:db8::1""#, "`for` is not a node"),
        (r#"for="[192.0.2.1]""#, "`for` is not a node"),
        (r#"for="192.0.2.1:""#, "`for` is not a node"),
        (r#"for="_""#, "`for` is not a node"),
        (r#"for="_a b""#, "`for` is not a node"),
        ("for=example.com", "`for` is not a node"),
        ("for=192.0.2.01", "`for` is not a node"),
        ("for=hidden", "`for` is not a node"),
        ("for=192.0.2.1, garbage", "expected `=`"),
    ] {
        assert_malformed(fwd(header, 1), what);
    }
    let many = (0..=MAX_FORWARDED_PARAMETERS)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join(";");
    assert_malformed(fwd(&many, 1), "too many parameters in one element");
}

#[test]
fn bytes_outside_visible_ascii_are_refused() {
    for name in ["forwarded", "x-forwarded-for"] {
        let address = match name {
            "forwarded" => ForwardedAddress::forwarded(),
            _ => ForwardedAddress::x_forwarded_for(),
        };
        assert_malformed(
            resolve(address, name, &[b"for=192.0.2.1\xff"]),
            "not visible ASCII",
        );
    }
}

#[test]
fn length_and_entry_count_are_bounded_before_use() {
    let long = vec!["192.0.2.1"; 500].join(",");
    assert_eq!(
        xff(&long, 1),
        Err(ForwardedError::TooLong {
            max: DEFAULT_MAX_FORWARDED_LEN
        })
    );
    let many = vec!["192.0.2.1"; DEFAULT_MAX_FORWARDED_ELEMENTS + 1].join(",");
    assert_eq!(
        xff(&many, 1),
        Err(ForwardedError::TooManyElements {
            max: DEFAULT_MAX_FORWARDED_ELEMENTS
        })
    );
    let limited = ForwardedAddress::forwarded()
        .max_elements(2)
        .max_header_len(64);
    let fields: &[&[u8]] = &[b"for=192.0.2.1, for=192.0.2.2", b"for=192.0.2.3"];
    assert_eq!(
        resolve(limited, "forwarded", fields),
        Err(ForwardedError::TooManyElements { max: 2 })
    );
    let fields: &[&[u8]] = &[&[b'a'; 40], &[b'b'; 40]];
    assert_eq!(
        resolve(limited, "forwarded", fields),
        Err(ForwardedError::TooLong { max: 64 })
    );
}

#[test]
fn reasons_are_stable() {
    assert_eq!(
        ForwardedError::TooLong { max: 1 }.reason(),
        "forwarded_too_long"
    );
    assert_eq!(
        ForwardedError::TooManyElements { max: 1 }.reason(),
        "forwarded_too_many_elements"
    );
    assert_eq!(malformed(0, "x").reason(), "forwarded_malformed");
}
