//! A parser for Envoy's `x-forwarded-client-cert` (XFCC) header.
//!
//! The grammar (Envoy's `headers.rst`): elements separated by `,`, `key=value` pairs by `;`;
//! keys are case-insensitive; a value holding `,`, `;`, `=` or `"` is double-quoted, with
//! `\"` and `\\` as escapes inside quotes. Envoy appends the newest element last.
//!
//! This parser is strict where the grammar is: keys must be tokens (`[A-Za-z0-9_-]`, so
//! `" URI"` after a space is rejected rather than ignored), unquoted values may not hold
//! `"`, empty elements and trailing separators are rejected, and `Hash`, `Cert`, `Chain` and
//! `Subject` may appear once per element. Unknown keys are ignored. An `=` inside an
//! unquoted value is kept: Envoy writes `URI` values unquoted, and a URI may hold one.
//!
//! Parsing says nothing about trust: only [`XfccPolicy`](super::XfccPolicy) decides whether
//! a header is honoured.

use std::fmt;

/// Default bound on the header length, in bytes; a `Cert` plus a short `Chain` fits.
pub const DEFAULT_MAX_XFCC_LEN: usize = 32 * 1024;

/// Default bound on the number of elements (proxy hops) in one header.
pub const DEFAULT_MAX_XFCC_ELEMENTS: usize = 16;

/// Bound on the number of `key=value` pairs in one element.
pub const MAX_XFCC_PAIRS: usize = 64;

/// Why an XFCC header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XfccError {
    /// The header is longer than the bound.
    #[error("header is longer than {max} bytes")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// The header has more elements than the bound.
    #[error("header has more than {max} elements")]
    TooManyElements {
        /// The bound.
        max: usize,
    },
    /// An element has more than [`MAX_XFCC_PAIRS`] pairs.
    #[error("element has more than {max} pairs")]
    TooManyPairs {
        /// The bound.
        max: usize,
    },
    /// The header does not follow the grammar.
    #[error("malformed header at byte {offset}: {what}")]
    Malformed {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A single-valued key (`Hash`, `Cert`, `Chain`, `Subject`) appears twice in an element.
    #[error("duplicate `{key}` in one element")]
    DuplicateKey {
        /// The key, in its canonical spelling.
        key: &'static str,
    },
}

impl XfccError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "xfcc_too_long",
            Self::TooManyElements { .. } => "xfcc_too_many_elements",
            Self::TooManyPairs { .. } => "xfcc_too_many_pairs",
            Self::Malformed { .. } => "xfcc_malformed",
            Self::DuplicateKey { .. } => "xfcc_duplicate_key",
        }
    }
}

/// One element of an XFCC header: what one proxy knew about its client's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XfccElement {
    pairs: Vec<(String, String)>,
    by: Vec<String>,
    hash: Option<String>,
    cert: Option<String>,
    chain: Option<String>,
    subject: Option<String>,
    uris: Vec<String>,
    dns: Vec<String>,
}

impl XfccElement {
    /// Every pair in order: the key as written and the unquoted, unescaped value.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// `By` values: the SANs of the proxy that wrote the element.
    pub fn by(&self) -> &[String] {
        &self.by
    }

    /// `Hash`: hex SHA-256 of the client certificate, as written.
    pub fn hash(&self) -> Option<&str> {
        self.hash.as_deref()
    }

    /// `Cert`: the URL-encoded PEM client certificate, still encoded.
    pub fn cert(&self) -> Option<&str> {
        self.cert.as_deref()
    }

    /// `Chain`: the URL-encoded PEM client chain (leaf first), still encoded.
    pub fn chain(&self) -> Option<&str> {
        self.chain.as_deref()
    }

    /// `Subject` of the client certificate.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// `URI` SAN values of the client certificate.
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// `DNS` SAN values of the client certificate.
    pub fn dns(&self) -> &[String] {
        &self.dns
    }

    fn add(&mut self, key: &str, value: String, offset: usize) -> Result<(), XfccError> {
        if self.pairs.len() == MAX_XFCC_PAIRS {
            return Err(XfccError::TooManyPairs {
                max: MAX_XFCC_PAIRS,
            });
        }
        let single = |slot: &mut Option<String>, name: &'static str| {
            if slot.is_some() {
                return Err(XfccError::DuplicateKey { key: name });
            }
            *slot = Some(value.clone());
            Ok(())
        };
        match Key::of(key) {
            Some(Key::By) => self.by.push(value.clone()),
            Some(Key::Hash) => single(&mut self.hash, "Hash")?,
            Some(Key::Cert) => single(&mut self.cert, "Cert")?,
            Some(Key::Chain) => single(&mut self.chain, "Chain")?,
            Some(Key::Subject) => single(&mut self.subject, "Subject")?,
            Some(Key::Uri) => self.uris.push(value.clone()),
            Some(Key::Dns) => self.dns.push(value.clone()),
            None if key.bytes().all(is_token_byte) && !key.is_empty() => {}
            None => {
                return Err(XfccError::Malformed {
                    offset,
                    what: "key is not a token",
                });
            }
        }
        self.pairs.push((key.to_owned(), value));
        Ok(())
    }
}

/// Parses an XFCC header value with the default bounds
/// ([`DEFAULT_MAX_XFCC_LEN`], [`DEFAULT_MAX_XFCC_ELEMENTS`]).
///
/// An empty header has no elements.
///
/// # Errors
///
/// Returns an [`XfccError`] when the header breaks the grammar or a bound.
///
/// # Example
///
/// ```
/// let elements = meshguard::peer::parse_xfcc(
///     r#"By=spiffe://example.org/proxy;Hash=ab12;Subject="CN=a, O=b";URI=spiffe://example.org/web"#,
/// )?;
/// assert_eq!(elements[0].uris(), ["spiffe://example.org/web"]);
/// assert_eq!(elements[0].subject(), Some("CN=a, O=b"));
/// # Ok::<(), meshguard::peer::XfccError>(())
/// ```
pub fn parse_xfcc(header: &str) -> Result<Vec<XfccElement>, XfccError> {
    parse_xfcc_with_limits(header, DEFAULT_MAX_XFCC_LEN, DEFAULT_MAX_XFCC_ELEMENTS)
}

/// Parses an XFCC header value with explicit bounds on its length (bytes) and element
/// count.
///
/// # Errors
///
/// As [`parse_xfcc`].
pub fn parse_xfcc_with_limits(
    header: &str,
    max_len: usize,
    max_elements: usize,
) -> Result<Vec<XfccElement>, XfccError> {
    if header.len() > max_len {
        return Err(XfccError::TooLong { max: max_len });
    }
    if let Some(offset) = header.bytes().position(|b| b < 0x20 || b == 0x7f) {
        return Err(XfccError::Malformed {
            offset,
            what: "control character",
        });
    }
    let mut elements = Vec::new();
    if header.is_empty() {
        return Ok(elements);
    }
    let mut cursor = Cursor { s: header, pos: 0 };
    let mut element = XfccElement::default();
    loop {
        let key_start = cursor.pos;
        let key = cursor.take_while(|b| !matches!(b, b'=' | b';' | b','));
        if cursor.peek() != Some(b'=') {
            return Err(cursor.malformed("key without `=`"));
        }
        cursor.pos += 1;
        let value = if cursor.peek() == Some(b'"') {
            cursor.quoted()?
        } else {
            let start = cursor.pos;
            let value = cursor.take_while(|b| !matches!(b, b';' | b','));
            if let Some(i) = value.bytes().position(|b| b == b'"') {
                return Err(XfccError::Malformed {
                    offset: start + i,
                    what: "`\"` in an unquoted value",
                });
            }
            value.to_owned()
        };
        element.add(key, value, key_start)?;
        match cursor.peek() {
            None => break,
            Some(b';') => {
                cursor.pos += 1;
                if matches!(cursor.peek(), None | Some(b',' | b';')) {
                    return Err(cursor.malformed("empty pair"));
                }
            }
            Some(b',') => {
                cursor.pos += 1;
                if matches!(cursor.peek(), None | Some(b',' | b';')) {
                    return Err(cursor.malformed("empty element"));
                }
                push_element(&mut elements, std::mem::take(&mut element), max_elements)?;
            }
            Some(_) => return Err(cursor.malformed("text after a quoted value")),
        }
    }
    push_element(&mut elements, element, max_elements)?;
    Ok(elements)
}

fn push_element(
    elements: &mut Vec<XfccElement>,
    element: XfccElement,
    max: usize,
) -> Result<(), XfccError> {
    if elements.len() >= max {
        return Err(XfccError::TooManyElements { max });
    }
    elements.push(element);
    Ok(())
}

#[derive(Clone, Copy)]
enum Key {
    By,
    Hash,
    Cert,
    Chain,
    Subject,
    Uri,
    Dns,
}

impl Key {
    fn of(key: &str) -> Option<Self> {
        const KEYS: [(&str, Key); 7] = [
            ("By", Key::By),
            ("Hash", Key::Hash),
            ("Cert", Key::Cert),
            ("Chain", Key::Chain),
            ("Subject", Key::Subject),
            ("URI", Key::Uri),
            ("DNS", Key::Dns),
        ];
        KEYS.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, k)| *k)
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or_default()
    }

    /// Consumes ASCII-delimited text; the delimiters are ASCII, so the cut is always on a
    /// character boundary.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.bytes().position(|b| !keep(b)).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or_default()
    }

    /// Consumes a quoted value starting at its opening quote.
    fn quoted(&mut self) -> Result<String, XfccError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                // Envoy documents only `\"`; `\\` is the only way to end a value with a
                // backslash. Any other backslash is kept as written (`Acme\, Inc.`).
                '\\' => match chars.clone().next() {
                    Some((_, next @ ('"' | '\\'))) => {
                        out.push(next);
                        chars.next();
                    }
                    _ => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        Err(XfccError::Malformed {
            offset: open,
            what: "unterminated quoted value",
        })
    }

    fn malformed(&self, what: &'static str) -> XfccError {
        XfccError::Malformed {
            offset: self.pos,
            what,
        }
    }
}

impl fmt::Display for XfccElement {
    /// Writes the element back in XFCC syntax, quoting every value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{key}=\"")?;
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_through_the_parser() {
        let header = r#"By=spiffe://a/b;Subject="x\"y\\z,w";URI=spiffe://a/c;dns=x.example"#;
        let parsed = parse_xfcc(header).unwrap();
        let again = parse_xfcc(&parsed[0].to_string()).unwrap();
        assert_eq!(parsed, again);
        assert_eq!(parsed[0].subject(), Some("x\"y\\z,w"));
    }

    #[test]
    fn multibyte_text_in_quoted_value_is_kept() {
        let parsed = parse_xfcc("Subject=\"CN=Zoë\"").unwrap();
        assert_eq!(parsed[0].subject(), Some("CN=Zoë"));
    }
}
