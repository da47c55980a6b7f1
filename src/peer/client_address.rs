//! The client's address as trusted proxies report it: RFC 7239 `Forwarded` or
//! `X-Forwarded-For`, read from the right over a configured number of proxy hops.
//!
//! Each proxy appends the address it received the request from, so the right-most entry is
//! the one the nearest proxy wrote; entries further left were written by proxies further
//! away, or by the client itself. Only the proxy hops the service is configured to trust are
//! walked, and only in the one header those proxies maintain: a header the proxies pass
//! through unchanged is the client's to choose.
//!
//! Both parsers are strict and linear in the header length, which is bounded before
//! parsing, as is the number of entries. `Forwarded` follows RFC 7239 §4 (IPv6 addresses
//! and ports are quoted, parameters at most once per element, no empty elements) and also
//! accepts optional whitespace around `;`. An `X-Forwarded-For` entry is an IPv4 address,
//! an IPv6 address (bare or in brackets), either with a port, or `unknown`.
//!
//! # Example
//!
//! ```
//! use meshguard::peer::ForwardedAddress;
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-forwarded-for", "198.51.100.7, 203.0.113.9".parse()?);
//! // One trusted proxy: the right-most entry, which that proxy appended.
//! let one = ForwardedAddress::x_forwarded_for();
//! assert_eq!(one.resolve(&headers)?, Some("203.0.113.9".parse()?));
//! // Two trusted proxies in a row: the entry the farther one appended.
//! assert_eq!(one.hops(2).resolve(&headers)?, Some("198.51.100.7".parse()?));
//!
//! headers.insert("forwarded", r#"for="[2001:db8::7]:4711";proto=https"#.parse()?);
//! let rfc7239 = ForwardedAddress::forwarded();
//! assert_eq!(rfc7239.resolve(&headers)?, Some("2001:db8::7".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};

/// Default bound on the total length of the header fields read, in bytes.
pub const DEFAULT_MAX_FORWARDED_LEN: usize = 4 * 1024;

/// Default bound on the number of entries (proxy hops) in the header fields read.
pub const DEFAULT_MAX_FORWARDED_ELEMENTS: usize = 32;

/// Bound on the number of parameters in one `Forwarded` element.
const MAX_FORWARDED_PARAMETERS: usize = 16;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Why a forwarding header from a trusted proxy could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardedError {
    /// The header fields are longer than the bound.
    #[error("forwarding header is longer than {max} bytes")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// The header fields hold more entries than the bound.
    #[error("forwarding header has more than {max} entries")]
    TooManyElements {
        /// The bound.
        max: usize,
    },
    /// A header field does not follow the grammar.
    #[error("malformed forwarding header at byte {offset}: {what}")]
    Malformed {
        /// Byte offset of the problem in its header field.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
}

impl ForwardedError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "forwarded_too_long",
            Self::TooManyElements { .. } => "forwarded_too_many_elements",
            Self::Malformed { .. } => "forwarded_malformed",
        }
    }
}

/// Which header trusted proxies report the client's address in, and how many of them are
/// in a row in front of the service. Given to
/// [`PeerIdentityLayer::client_address`](super::PeerIdentityLayer::client_address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct ForwardedAddress {
    header: Header,
    hops: usize,
    max_len: usize,
    max_elements: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Forwarded,
    XForwardedFor,
}

impl ForwardedAddress {
    /// The `for=` parameter of RFC 7239 `Forwarded`; `X-Forwarded-For` is not read.
    pub fn forwarded() -> Self {
        Self::of(Header::Forwarded)
    }

    /// `X-Forwarded-For`; `Forwarded` is not read.
    pub fn x_forwarded_for() -> Self {
        Self::of(Header::XForwardedFor)
    }

    fn of(header: Header) -> Self {
        Self {
            header,
            hops: 1,
            max_len: DEFAULT_MAX_FORWARDED_LEN,
            max_elements: DEFAULT_MAX_FORWARDED_ELEMENTS,
        }
    }

    /// The number of trusted proxies in a row, each appending one entry: the client is the
    /// entry `hops` from the right. `0` selects no entry.
    ///
    /// # Security
    ///
    /// Count only proxies that append to the header: with one too many, the client's own
    /// entry is taken for the address. Defaults to 1, the direct peer.
    pub fn hops(mut self, hops: usize) -> Self {
        self.hops = hops;
        self
    }

    /// Bounds the total length of the header fields. Defaults to
    /// [`DEFAULT_MAX_FORWARDED_LEN`].
    pub fn max_header_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// Bounds the number of entries. Defaults to [`DEFAULT_MAX_FORWARDED_ELEMENTS`].
    pub fn max_elements(mut self, max: usize) -> Self {
        self.max_elements = max;
        self
    }

    /// The client's address in `headers`, as a trusted proxy wrote it. Several fields of
    /// the header are read as one list, in order. `None` when the header is absent, has
    /// fewer entries than [`hops`](Self::hops), or names the client `unknown`, by an
    /// obfuscated identifier (`_hidden`) or, in `Forwarded`, not at all; the proxy's own
    /// address is never taken for its client's. IPv4-mapped IPv6 addresses are returned as
    /// IPv4.
    ///
    /// # Errors
    ///
    /// [`ForwardedError`] when the header is too long, has too many entries, or does not
    /// parse anywhere (also left of the entry used).
    pub fn resolve(&self, headers: &HeaderMap) -> Result<Option<IpAddr>, ForwardedError> {
        let name = match self.header {
            Header::Forwarded => FORWARDED,
            Header::XForwardedFor => X_FORWARDED_FOR,
        };
        let fields = headers.get_all(name);
        let length = fields
            .iter()
            .fold(0_usize, |sum, field| sum.saturating_add(field.len()));
        if length > self.max_len {
            return Err(ForwardedError::TooLong { max: self.max_len });
        }
        let mut entries = Entries {
            nodes: Vec::new(),
            max: self.max_elements,
        };
        for field in fields {
            let text = field
                .to_str()
                .map_err(|_| malformed(0, "not visible ASCII"))?;
            match self.header {
                Header::Forwarded => parse_forwarded(text, &mut entries)?,
                Header::XForwardedFor => parse_x_forwarded_for(text, &mut entries)?,
            }
        }
        let node = match self.hops {
            0 => None,
            hops => entries
                .nodes
                .len()
                .checked_sub(hops)
                .and_then(|index| entries.nodes.get(index)),
        };
        Ok(node.copied().flatten().map(|ip| ip.to_canonical()))
    }
}

/// The entries read so far: an address, or `None` for a client the proxy did not name.
struct Entries {
    nodes: Vec<Option<IpAddr>>,
    max: usize,
}

impl Entries {
    fn push(&mut self, node: Option<IpAddr>) -> Result<(), ForwardedError> {
        if self.nodes.len() >= self.max {
            return Err(ForwardedError::TooManyElements { max: self.max });
        }
        self.nodes.push(node);
        Ok(())
    }
}

fn malformed(offset: usize, what: &'static str) -> ForwardedError {
    ForwardedError::Malformed { offset, what }
}

/// One `X-Forwarded-For` field: entries separated by `,` with optional whitespace.
fn parse_x_forwarded_for(field: &str, entries: &mut Entries) -> Result<(), ForwardedError> {
    let mut offset = 0;
    for entry in field.split(',') {
        let text = entry.trim_matches([' ', '\t']);
        if text.is_empty() {
            return Err(malformed(offset, "empty entry"));
        }
        let node = if text.eq_ignore_ascii_case("unknown") {
            None
        } else {
            Some(address(text).ok_or_else(|| malformed(offset, "entry is not an IP address"))?)
        };
        entries.push(node)?;
        offset += entry.len() + 1;
    }
    Ok(())
}

/// An IPv4 address, an IPv6 address bare or in brackets, either with a port.
fn address(text: &str) -> Option<IpAddr> {
    if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !after.is_empty() && !after.strip_prefix(':').is_some_and(is_port) {
            return None;
        }
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    let (host, port) = text.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(text: &str) -> bool {
    (1..=5).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// `obfnode` / `obfport` of RFC 7239 §6.3: `_` and one or more of `[A-Za-z0-9._-]`.
fn is_obfuscated(text: &str) -> bool {
    text.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// The value of `for=` (RFC 7239 §6): `None` for `unknown` and obfuscated names, `Err(())`
/// for anything that is not a node.
fn node(value: &str) -> Result<Option<IpAddr>, ()> {
    let (name, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']').ok_or(())?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(())?),
            };
            let ip = v6.parse::<Ipv6Addr>().map_err(|_| ())?;
            (Ok(IpAddr::V6(ip)), port)
        }
        None => {
            let (name, port) = match value.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (value, None),
            };
            (Err(name), port)
        }
    };
    if port.is_some_and(|port| !is_port(port) && !is_obfuscated(port)) {
        return Err(());
    }
    match name {
        Ok(ip) => Ok(Some(ip)),
        Err(name) if name.eq_ignore_ascii_case("unknown") || is_obfuscated(name) => Ok(None),
        Err(name) => name
            .parse::<Ipv4Addr>()
            .map(|ip| Some(IpAddr::V4(ip)))
            .map_err(|_| ()),
    }
}

/// One `Forwarded` field: `1#forwarded-element`.
fn parse_forwarded(field: &str, entries: &mut Entries) -> Result<(), ForwardedError> {
    let mut cursor = Cursor {
        bytes: field.as_bytes(),
        text: field,
        at: 0,
    };
    loop {
        cursor.skip_whitespace();
        entries.push(element(&mut cursor)?)?;
        cursor.skip_whitespace();
        match cursor.next() {
            None => return Ok(()),
            Some(b',') => {}
            Some(_) => return Err(cursor.error_before("expected `,` or the end")),
        }
    }
}

/// One `forwarded-element`: `pair *( ";" pair )`; the client named by its `for=`.
fn element(cursor: &mut Cursor<'_>) -> Result<Option<IpAddr>, ForwardedError> {
    let mut names: Vec<&str> = Vec::new();
    let mut client = None;
    loop {
        let name = cursor.token();
        if name.is_empty() {
            return Err(cursor.error("expected a parameter name"));
        }
        if names.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
            return Err(cursor.error("parameter repeated in one element"));
        }
        if names.len() == MAX_FORWARDED_PARAMETERS {
            return Err(cursor.error("too many parameters in one element"));
        }
        names.push(name);
        if cursor.next() != Some(b'=') {
            return Err(cursor.error_before("expected `=`"));
        }
        let start = cursor.at;
        let value = match cursor.peek() {
            Some(b'"') => cursor.quoted()?,
            _ => Cow::Borrowed(cursor.token()),
        };
        if value.is_empty() {
            return Err(malformed(start, "empty value"));
        }
        if name.eq_ignore_ascii_case("for") {
            client = node(&value).map_err(|()| malformed(start, "`for` is not a node"))?;
        }
        cursor.skip_whitespace();
        if cursor.peek() != Some(b';') {
            return Ok(client);
        }
        cursor.next();
        cursor.skip_whitespace();
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// `*tchar` (RFC 9110 §5.6.2).
    fn token(&mut self) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        self.text.get(start..self.at).unwrap_or_default()
    }

    /// A `quoted-string` (RFC 9110 §5.6.4), unescaped; the cursor is on its `"`.
    fn quoted(&mut self) -> Result<Cow<'a, str>, ForwardedError> {
        let start = self.at;
        self.at += 1;
        let mut value = String::new();
        loop {
            match self.next() {
                None => return Err(malformed(start, "unterminated quoted string")),
                Some(b'"') => return Ok(Cow::Owned(value)),
                Some(b'\\') => match self.next() {
                    Some(byte @ (b'\t' | b' '..=b'~')) => value.push(char::from(byte)),
                    _ => return Err(self.error_before("bad escape in quoted string")),
                },
                Some(byte @ (b'\t' | b' ' | b'!' | b'#'..=b'[' | b']'..=b'~')) => {
                    value.push(char::from(byte));
                }
                Some(_) => return Err(self.error_before("bad byte in quoted string")),
            }
        }
    }

    fn error(&self, what: &'static str) -> ForwardedError {
        malformed(self.at, what)
    }

    /// An error about the byte just read.
    fn error_before(&self, what: &'static str) -> ForwardedError {
        malformed(self.at.saturating_sub(1), what)
    }
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
#[path = "client_address_tests.rs"]
mod tests;
