//! The `htu` comparison of RFC 9449 §4.3: both URIs normalized as RFC 3986 §6.2.2–6.2.3 says,
//! query and fragment ignored.

/// `uri`, an absolute `http` or `https` URI, in the form two spellings of one resource share:
/// scheme and host in lower case, the scheme's default port dropped, an empty path as `/`,
/// percent-encodings in upper case and those of unreserved characters decoded, dot segments
/// removed; query and fragment dropped. `None` for anything else: another scheme, user
/// information, a bad port or percent-encoding, non-ASCII or control characters.
pub(crate) fn normalize(uri: &str) -> Option<String> {
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at_checked(end)?;
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let (host, port) = split_port(authority)?;
    if host.is_empty() || host.contains('@') || host.contains('%') {
        return None;
    }
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(port) = port.filter(|port| *port != default_port) {
        out.push(':');
        out.push_str(port);
    }
    out.push_str(&remove_dot_segments(&normalize_percent(path)?));
    Some(out)
}

/// Host and port of an authority; an empty port (`host:`) counts as none (RFC 3986 §6.2.3).
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    // An IPv6 literal holds colons of its own: the port follows its closing bracket.
    let after_host = match authority.strip_prefix('[') {
        Some(literal) => literal.find(']')? + 2,
        None => authority.find(':').unwrap_or(authority.len()),
    };
    let (host, port) = authority.split_at_checked(after_host)?;
    match port {
        "" => Some((host, None)),
        _ => {
            let digits = port.strip_prefix(':')?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 5 {
                return None;
            }
            // Leading zeros name the same port.
            let trimmed = digits.trim_start_matches('0');
            match (digits.is_empty(), trimmed.is_empty()) {
                (true, _) => Some((host, None)),
                (false, true) => Some((host, Some("0"))),
                (false, false) => Some((host, Some(trimmed))),
            }
        }
    }
}

/// Percent-encodings in upper case, those of unreserved characters decoded (RFC 3986
/// §6.2.2.1–6.2.2.2); `None` for a `%` not followed by two hex digits.
fn normalize_percent(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'%' {
            out.push(char::from(byte));
            continue;
        }
        let high = hex(bytes.next()?)?;
        let low = hex(bytes.next()?)?;
        let decoded = high << 4 | low;
        if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(decoded));
        } else {
            out.push_str(&format!("%{decoded:02X}"));
        }
    }
    Some(out)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// RFC 3986 §5.2.4 on an absolute path (or an empty one, read as `/`).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => {
                out.push(other);
                continue;
            }
        }
        // `/a/.` and `/a/b/..` end in a slash.
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_spellings_normalize_alike() {
        let expected = Some("https://server.example.com/path/a".to_owned());
        for uri in [
            "https://server.example.com/path/a",
            "HTTPS://Server.Example.COM/path/a",
            "https://server.example.com:443/path/a",
            "https://server.example.com:/path/a",
            "https://server.example.com:0443/path/a",
            "https://server.example.com/path/a?query=1#fragment",
            "https://server.example.com/path/./b/../a",
            "https://server.example.com/p%61th/a",
            "https://server.example.com/%70ath/%61#x",
        ] {
            assert_eq!(normalize(uri), expected, "{uri}");
        }
        assert_eq!(
            normalize("http://h.example").as_deref(),
            Some("http://h.example/")
        );
        assert_eq!(
            normalize("http://h.example?x").as_deref(),
            Some("http://h.example/")
        );
        assert_eq!(
            normalize("http://h.example:8080/a%2fb/").as_deref(),
            Some("http://h.example:8080/a%2Fb/")
        );
        assert_eq!(
            normalize("http://[::1]:80/a/.").as_deref(),
            Some("http://[::1]/a/")
        );
        assert_eq!(
            normalize("http://[::1]:8080/").as_deref(),
            Some("http://[::1]:8080/")
        );
        assert_eq!(normalize("http://h/a/b/..").as_deref(), Some("http://h/a/"));
        assert_eq!(normalize("http://h/../../x").as_deref(), Some("http://h/x"));
    }

    #[test]
    fn different_resources_stay_different() {
        let base = normalize("https://h.example/a");
        for other in [
            "http://h.example/a",
            "https://h.example:8443/a",
            "https://h.example/A",
            "https://h.example/a/",
            "https://other.example/a",
            "https://h.example/a%2F",
        ] {
            assert_ne!(normalize(other), base, "{other}");
        }
    }

    #[test]
    fn bad_uris_do_not_normalize() {
        for uri in [
            "ftp://h/a",
            "/a",
            "https:/h/a",
            "https://user@h/a",
            "https:///a",
            "https://h:port/a",
            "https://h:123456/a",
            "https://h/a%zz",
            "https://h/a%4",
            "https://h/a b",
            "https://h/\u{e9}",
            "https://[::1/a",
        ] {
            assert_eq!(normalize(uri), None, "{uri}");
        }
    }
}
