//! Where credentials may go: `https://`, or `http://` to a loopback address only, and for
//! the layer exactly the origin it was configured for.

use http::Uri;
use http::uri::Scheme;

use super::error::{OutgoingBuilderError, OutgoingError};
use crate::token::remote::discovery::{is_loopback_host, redact_userinfo};

/// The origin a layer's requests go to: a scheme, a host and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    https: bool,
    /// Lowercase, IPv6 addresses in brackets as in a URI.
    host: Box<str>,
    port: u16,
}

impl Origin {
    /// Parses `https://host[:port]` (or `http://` with a loopback host), a trailing `/`
    /// allowed, nothing else: no path, query or credentials.
    pub(crate) fn parse(raw: &str) -> Result<Self, OutgoingBuilderError> {
        let refused = || OutgoingBuilderError::Origin(redact_userinfo(raw).into());
        let uri: Uri = raw.parse().map_err(|_| refused())?;
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(refused());
        }
        let origin = Origin::of(&uri).ok_or_else(refused)?;
        if !origin.https && !is_loopback_host(&origin.host) {
            return Err(refused());
        }
        Ok(origin)
    }

    /// Whether a request to `uri` goes to this origin: an absolute one must name this
    /// origin exactly; a URI of a path only (as tonic's generated clients make them, the
    /// channel adds its origin) only when the caller vouches for the inner service
    /// (`trust_inner`).
    pub(crate) fn admits(&self, uri: &Uri, trust_inner: bool) -> bool {
        if uri.scheme().is_none() && uri.authority().is_none() {
            return trust_inner;
        }
        Origin::of(uri).is_some_and(|theirs| theirs == *self)
    }

    fn of(uri: &Uri) -> Option<Origin> {
        let https = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTPS => true,
            Some(scheme) if *scheme == Scheme::HTTP => false,
            _ => return None,
        };
        let authority = uri.authority()?;
        // `user:pass@host` is not an origin; never send credentials to one.
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return None;
        }
        Some(Origin {
            https,
            host: authority.host().to_ascii_lowercase().into(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        })
    }
}

/// Checks that `destination` (an absolute URL) is `https://`, or `http://` to a loopback
/// host.
pub(crate) fn check_destination(destination: &str) -> Result<(), OutgoingError> {
    let uri: Uri = destination
        .parse()
        .map_err(|_| OutgoingError::Destination)?;
    match Origin::of(&uri) {
        Some(origin) if origin.https || is_loopback_host(&origin.host) => Ok(()),
        _ => Err(OutgoingError::Destination),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_https_or_loopback_http_without_path() {
        for good in [
            "https://payments.internal",
            "https://payments.internal:8443/",
            "http://127.0.0.1:50051",
            "http://localhost:8080",
            "http://[::1]:9000",
        ] {
            assert!(Origin::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "http://payments.internal",
            "http://10.0.0.1:80",
            "http://127.0.0.1.nip.io",
            "https://payments.internal/api",
            "https://payments.internal?x=1",
            "https://u:p@payments.internal",
            "ftp://payments.internal",
            "payments.internal:443",
            "/path",
            "",
        ] {
            assert_eq!(
                Origin::parse(bad).unwrap_err().reason(),
                "invalid_origin",
                "{bad}"
            );
        }
    }

    #[test]
    fn only_the_same_origin_and_trusted_path_only_uris_are_admitted() {
        let origin = Origin::parse("https://Payments.internal").unwrap();
        for same in [
            "https://payments.internal/x",
            "https://PAYMENTS.internal:443/x?y",
        ] {
            assert!(origin.admits(&same.parse().unwrap(), false), "{same}");
            assert!(origin.admits(&same.parse().unwrap(), true), "{same}");
        }
        let path_only = "/pkg.Svc/Method".parse().unwrap();
        assert!(!origin.admits(&path_only, false));
        assert!(origin.admits(&path_only, true));
        for other in [
            "http://payments.internal/x",
            "https://payments.internal:8443/x",
            "https://evil.example/x",
            "https://payments.internal.evil.example/x",
            "payments.internal:443",
        ] {
            assert!(!origin.admits(&other.parse().unwrap(), true), "{other}");
        }
    }

    #[test]
    fn destinations_must_be_https_or_loopback() {
        assert!(check_destination("https://api.example/x").is_ok());
        assert!(check_destination("http://127.0.0.1:8080/x").is_ok());
        assert!(check_destination("http://localhost/x").is_ok());
        for bad in [
            "http://api.example/x",
            "http://192.168.1.1/",
            "/x",
            "ws://localhost/",
        ] {
            assert_eq!(
                check_destination(bad).unwrap_err().reason(),
                "destination",
                "{bad}"
            );
        }
    }
}
