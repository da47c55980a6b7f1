//! OpenID Connect discovery: the issuer's configuration document names its JWKS, and URL
//! rules shared by every remote location.

use std::net::IpAddr;

use reqwest::Url;
use serde::Deserialize;

use super::super::json;
use super::super::keys::MAX_KEY_DOCUMENT_BYTES;
use super::error::RemoteError;

/// The path OpenID Connect Discovery 1.0 §4 appends to an issuer.
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Most characters of a foreign issuer echoed back in an [`RemoteError::IssuerMismatch`];
/// the document is untrusted and logs must stay bounded.
const MAX_ECHOED_ISSUER: usize = 256;

/// Reads an OpenID Connect discovery document and returns its `jwks_uri`, after checking
/// that its `issuer` equals `issuer` exactly (OpenID Connect Discovery 1.0 §4.3).
///
/// The document must be a JSON object, without duplicate members, whose `issuer` and
/// `jwks_uri` are strings; other members are ignored. The returned URI is not yet checked
/// for scheme or host.
///
/// # Example
///
/// ```
/// use meshguard::token::remote::discovered_jwks_uri;
///
/// let document = br#"{"issuer":"https://idp.example","jwks_uri":"https://idp.example/keys"}"#;
/// assert_eq!(discovered_jwks_uri(document, "https://idp.example")?, "https://idp.example/keys");
/// let other = discovered_jwks_uri(document, "https://idp.example/").unwrap_err();
/// assert_eq!(other.reason(), "issuer_mismatch");
/// # Ok::<(), meshguard::token::remote::RemoteError>(())
/// ```
///
/// # Errors
///
/// [`RemoteError::Discovery`] for a document that is too large (over 1 MiB), not strict
/// JSON, or lacks the two members; [`RemoteError::IssuerMismatch`] when it names another
/// issuer.
pub fn discovered_jwks_uri(document: &[u8], issuer: &str) -> Result<String, RemoteError> {
    if document.len() > MAX_KEY_DOCUMENT_BYTES {
        return Err(RemoteError::Discovery(format!(
            "larger than {MAX_KEY_DOCUMENT_BYTES} bytes"
        )));
    }
    json::check_strict(document).map_err(|e| RemoteError::Discovery(e.to_string()))?;
    let parsed: Document =
        serde_json::from_slice(document).map_err(|e| RemoteError::Discovery(e.to_string()))?;
    if parsed.issuer != issuer {
        // Control characters would let the document forge log lines.
        let found = parsed
            .issuer
            .chars()
            .take(MAX_ECHOED_ISSUER)
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        return Err(RemoteError::IssuerMismatch {
            expected: issuer.to_owned(),
            found,
        });
    }
    Ok(parsed.jwks_uri)
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    jwks_uri: String,
}

/// Where an issuer's discovery document lives: `{issuer}/.well-known/openid-configuration`,
/// a trailing `/` of the issuer dropped first (§4).
pub(super) fn discovery_url(issuer: &str, allow_plain_http: bool) -> Result<Url, RemoteError> {
    let parsed = checked_url(issuer, allow_plain_http)?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(RemoteError::InvalidUrl {
            url: issuer.to_owned(),
            why: "an issuer has no query or fragment".into(),
        });
    }
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    checked_url(&format!("{base}{WELL_KNOWN}"), allow_plain_http)
}

/// Parses a URL meshguard may fetch keys from: `https://`, or `http://` to a loopback host
/// unless plain HTTP is allowed; no credentials in it (they would end up in logs).
pub(crate) fn checked_url(raw: &str, allow_plain_http: bool) -> Result<Url, RemoteError> {
    let invalid = |why: &str| RemoteError::InvalidUrl {
        url: redact_userinfo(raw),
        why: why.to_owned(),
    };
    let url = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_plain_http || is_loopback(&url) => {}
        "http" => return Err(RemoteError::PlainHttp(redact_userinfo(raw))),
        _ => return Err(invalid("the scheme must be https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the URL"));
    }
    Ok(url)
}

/// `raw` as it may be shown in an error: a `user:password@` before the host becomes
/// `***@`. The URL may not parse, so this reads the text: everything from the scheme's
/// `://` (or the start) to the last `@` before any `?` or `#` goes; an `@` in a path hides
/// that path too, which costs an error message some detail, never a secret.
pub(crate) fn redact_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |at| at.saturating_add(3));
    let before_query = raw.find(['?', '#']).unwrap_or(raw.len());
    let userinfo_end = raw
        .get(..before_query)
        .and_then(|head| head.rfind('@'))
        .filter(|&at| at >= start);
    match (userinfo_end, raw.get(..start)) {
        (Some(at), Some(scheme)) => format!("{scheme}***{}", raw.get(at..).unwrap_or("")),
        _ => raw.to_owned(),
    }
}

fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

/// `localhost` or a loopback address (127.0.0.0/8, `[::1]`): the one place plain HTTP is
/// allowed without being asked for, for key sources, introspection, token endpoints and
/// outgoing destinations alike.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn userinfo_never_reaches_a_refusal() {
        for (raw, shown) in [
            (
                "https://u:secret@idp.example/t",
                "https://***@idp.example/t",
            ),
            ("http://secret@idp.example", "http://***@idp.example"),
            ("https://u:pa/ss@idp.example/t", "https://***@idp.example/t"),
            ("u:secret@idp.example:443", "***@idp.example:443"),
            ("https://u:s@cret@idp", "https://***@idp"),
            ("https://idp.example/t?a=b@c", "https://idp.example/t?a=b@c"),
            ("https://idp.example/t", "https://idp.example/t"),
        ] {
            assert_eq!(super::redact_userinfo(raw), shown, "{raw}");
        }
        for raw in [
            "https://u:secret@idp.example/t",
            "http://u:secret@idp.example",
        ] {
            let refused = super::checked_url(raw, false).unwrap_err().to_string();
            assert!(!refused.contains("secret"), "{refused}");
        }
    }

    use super::*;

    #[test]
    fn discovery_url_drops_one_trailing_slash() {
        let url = discovery_url("https://idp.example/realms/a/", false).unwrap();
        assert_eq!(
            url.as_str(),
            "https://idp.example/realms/a/.well-known/openid-configuration"
        );
        let url = discovery_url("https://idp.example", false).unwrap();
        assert_eq!(
            url.as_str(),
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn issuers_with_query_or_fragment_are_refused() {
        for bad in ["https://idp.example?a=b", "https://idp.example#x"] {
            assert_eq!(
                discovery_url(bad, false).unwrap_err().reason(),
                "invalid_url"
            );
        }
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8080/jwks",
            "http://[::1]/jwks",
            "http://LOCALHOST/jwks",
            "https://idp.example/jwks",
        ] {
            assert!(checked_url(ok, false).is_ok(), "{ok}");
        }
        for bad in ["http://idp.example/jwks", "http://10.0.0.1/jwks"] {
            assert_eq!(checked_url(bad, false).unwrap_err().reason(), "plain_http");
            assert!(checked_url(bad, true).is_ok());
        }
        for bad in [
            "ftp://idp.example/jwks",
            "file:///etc/passwd",
            "https://user:pw@idp.example/jwks",
            "not a url",
            "https://",
        ] {
            assert_eq!(
                checked_url(bad, true).unwrap_err().reason(),
                "invalid_url",
                "{bad}"
            );
        }
    }

    #[test]
    fn discovery_documents_are_checked() {
        let issuer = "https://idp.example";
        for (document, reason) in [
            (&b"[]"[..], "invalid_discovery"),
            (b"{}", "invalid_discovery"),
            (b"{\"issuer\":\"https://idp.example\"}", "invalid_discovery"),
            (
                b"{\"issuer\":\"https://idp.example\",\"jwks_uri\":7}",
                "invalid_discovery",
            ),
            (
                b"{\"issuer\":\"https://idp.example\",\"issuer\":\"https://idp.example\",\"jwks_uri\":\"x\"}",
                "invalid_discovery",
            ),
            (
                b"{\"issuer\":\"https://IDP.example\",\"jwks_uri\":\"x\"}",
                "issuer_mismatch",
            ),
            (b"\xff", "invalid_discovery"),
        ] {
            assert_eq!(
                discovered_jwks_uri(document, issuer).unwrap_err().reason(),
                reason
            );
        }
        let huge = vec![b' '; MAX_KEY_DOCUMENT_BYTES + 1];
        assert_eq!(
            discovered_jwks_uri(&huge, issuer).unwrap_err().reason(),
            "invalid_discovery"
        );
    }

    #[test]
    fn mismatched_issuer_echo_is_bounded_and_printable() {
        let long = format!("https://evil\\n{}", "é".repeat(400));
        let document = format!("{{\"issuer\":\"{long}\",\"jwks_uri\":\"x\"}}");
        let RemoteError::IssuerMismatch { found, .. } =
            discovered_jwks_uri(document.as_bytes(), "https://idp.example").unwrap_err()
        else {
            panic!("expected a mismatch");
        };
        assert_eq!(found.chars().count(), MAX_ECHOED_ISSUER);
        assert!(found.starts_with("https://evil\u{fffd}é"));
    }
}
