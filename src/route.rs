//! One reading of request paths and route templates, shared by the guard's rules and the
//! policy mapping so that the two can never read a path differently — and read it as axum
//! does: templates are matched on the undecoded path with `matchit` (axum's own matcher,
//! with its priorities: literal segments before parameters before wildcards), and
//! parameters are percent-decoded.
//!
//! Matching the undecoded path agrees with what a handler sees only while no literal
//! segment can be spelled two ways. Two rules make sure of it: a rule's literal segments
//! hold only characters that never need percent-encoding (RFC 3986 unreserved), and a path
//! that percent-encodes such a character, a `/`, `\` or `%`, or that has empty, `.` or `..`
//! segments, is not *routable*: the guard applies no rule to it, so every check runs.

use std::borrow::Cow;

/// Why a request path cannot be read at all; the request is then refused as malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// An empty segment before the last one (`//`).
    EmptySegment,
    /// A `.` or `..` segment, written plainly or percent-encoded.
    DotSegment,
    /// A percent-encoded `/` inside a segment.
    EncodedSlash,
    /// Malformed percent-encoding, or bytes that do not decode to UTF-8.
    BadEncoding,
}

impl PathError {
    /// Why, in a few words.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::NotAbsolute => "path must start with `/`",
            Self::EmptySegment => "empty path segment",
            Self::DotSegment => "`.` or `..` path segment",
            Self::EncodedSlash => "encoded `/` in a path segment",
            Self::BadEncoding => "malformed percent-encoding",
        }
    }
}

/// A request path split into segments, each checked and percent-decoded, in one pass.
#[derive(Debug)]
pub(crate) struct RequestPath<'a> {
    raw: Vec<&'a str>,
    decoded: Vec<Cow<'a, str>>,
    routable: bool,
}

impl<'a> RequestPath<'a> {
    /// Reads `path` (the undecoded path of a request URI).
    pub(crate) fn parse(path: &'a str) -> Result<Self, PathError> {
        let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let mut parsed = Self {
            raw: Vec::new(),
            decoded: Vec::new(),
            routable: true,
        };
        if rest.is_empty() {
            return Ok(parsed);
        }
        let mut segments = rest.split('/').peekable();
        while let Some(segment) = segments.next() {
            if segment.is_empty() {
                if segments.peek().is_some() {
                    return Err(PathError::EmptySegment);
                }
                // A trailing slash names another resource than the path without it.
                parsed.routable = false;
            }
            let (decoded, routable) = decode_segment(segment)?;
            if decoded == "." || decoded == ".." {
                return Err(PathError::DotSegment);
            }
            parsed.routable &= routable;
            parsed.raw.push(segment);
            parsed.decoded.push(decoded);
        }
        Ok(parsed)
    }

    /// Whether route templates may be matched against this path (see the module docs).
    pub(crate) fn is_routable(&self) -> bool {
        self.routable
    }

    /// The decoded path, as a handler sees it.
    pub(crate) fn decoded(&self) -> Cow<'a, str> {
        if self.decoded.is_empty() {
            return Cow::Borrowed("/");
        }
        let mut path = String::new();
        for segment in &self.decoded {
            path.push('/');
            path.push_str(segment);
        }
        Cow::Owned(path)
    }
}

/// Decodes one segment; `false` when it percent-encodes a character that must not be
/// encoded for the path to stay routable.
fn decode_segment(segment: &str) -> Result<(Cow<'_, str>, bool), PathError> {
    let mut routable = !segment.contains('\\');
    let mut slash = false;
    let decoded = decode_with(segment, |escaped| {
        slash |= escaped == b'/';
        routable &= !(is_unreserved(escaped) || escaped == b'\\' || escaped == b'%');
    })?;
    if slash {
        return Err(PathError::EncodedSlash);
    }
    Ok((decoded, routable))
}

/// Percent-decodes `text` into UTF-8.
pub(crate) fn decode_all(text: &str) -> Result<Cow<'_, str>, PathError> {
    decode_with(text, |_| {})
}

/// Percent-decodes `text` into UTF-8 in one pass, telling `escaped` each byte that was
/// percent-encoded.
fn decode_with(text: &str, mut escaped: impl FnMut(u8)) -> Result<Cow<'_, str>, PathError> {
    if !text.contains('%') {
        return Ok(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let value = bytes
                .get(i + 1)
                .zip(bytes.get(i + 2))
                .and_then(|(h, l)| Some(hex(*h)? << 4 | hex(*l)?))
                .ok_or(PathError::BadEncoding)?;
            escaped(value);
            out.push(value);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::BadEncoding)
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3: `ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{name}`, possibly after a literal prefix (`v{version}`), as axum allows.
    Param {
        prefix: String,
        name: String,
    },
    /// `{*name}`: the rest of the path, at least one character.
    Wildcard(String),
}

/// A route template in axum's syntax: `/orders/{id}`, `/docs/{*rest}`.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    text: String,
    parts: Vec<Part>,
}

impl Template {
    /// A template written in a guard rule, held to the strict form: whole-segment
    /// parameters, a wildcard only last, literal segments of unreserved characters only.
    pub(crate) fn parse_rule(text: &str) -> Result<Self, String> {
        let template =
            Self::parse_routed(text).ok_or_else(|| format!("`{text}` is not a route template"))?;
        for (i, part) in template.parts.iter().enumerate() {
            match part {
                Part::Literal(literal) if literal.is_empty() => {
                    return Err(format!("`{text}` has an empty segment"));
                }
                Part::Literal(literal) if !literal.bytes().all(is_unreserved) => {
                    return Err(format!(
                        "`{text}`: literal segments may only hold letters, digits, `-`, `.`, \
                         `_` and `~` (other characters can be spelled several ways)"
                    ));
                }
                Part::Literal(literal) if literal == "." || literal == ".." => {
                    return Err(format!("`{text}` has a `.` or `..` segment"));
                }
                Part::Param { prefix, name } if !prefix.is_empty() => {
                    return Err(format!(
                        "`{text}`: `{prefix}{{{name}}}` mixes a literal and a parameter in one \
                         segment"
                    ));
                }
                Part::Wildcard(_) if i + 1 != template.parts.len() => {
                    return Err(format!("`{text}`: a wildcard must come last"));
                }
                _ => {}
            }
        }
        Ok(template)
    }

    /// A template as a router reports it (axum's `MatchedPath`); `None` when it is not of
    /// axum's form.
    pub(crate) fn parse_routed(text: &str) -> Option<Self> {
        let rest = text.strip_prefix('/')?;
        let mut parts = Vec::new();
        if !rest.is_empty() {
            for segment in rest.split('/') {
                parts.push(parse_part(segment)?);
            }
        }
        let wildcard_not_last = parts
            .iter()
            .rev()
            .skip(1)
            .any(|part| matches!(part, Part::Wildcard(_)));
        if wildcard_not_last {
            return None;
        }
        Some(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The decoded parameters when `path` matches, in template order.
    pub(crate) fn captures(&self, path: &RequestPath<'_>) -> Option<Vec<(&str, String)>> {
        let mut params = Vec::new();
        let mut segments = path.raw.iter().zip(&path.decoded);
        for part in &self.parts {
            if let Part::Wildcard(name) = part {
                let rest: Vec<&str> = segments.by_ref().map(|(_, d)| d.as_ref()).collect();
                let value = rest.join("/");
                if value.is_empty() {
                    return None;
                }
                params.push((name.as_str(), value));
                return Some(params);
            }
            let (raw, decoded) = segments.next()?;
            match part {
                Part::Literal(literal) => {
                    if raw != literal && decoded != literal {
                        return None;
                    }
                }
                Part::Param { prefix, name } => {
                    let value = raw.strip_prefix(prefix.as_str())?;
                    if value.is_empty() {
                        return None;
                    }
                    let value = decode_all(value).ok()?;
                    params.push((name.as_str(), value.into_owned()));
                }
                Part::Wildcard(_) => return None,
            }
        }
        segments.next().is_none().then_some(params)
    }
}

fn parse_part(segment: &str) -> Option<Part> {
    if let Some(name) = segment.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
        return is_name(name).then(|| Part::Wildcard(name.to_owned()));
    }
    match segment.split_once('{') {
        None if !segment.contains('}') => Some(Part::Literal(segment.to_owned())),
        None => None,
        Some((prefix, rest)) => {
            let name = rest.strip_suffix('}')?;
            (is_name(name) && !prefix.contains('}')).then(|| Part::Param {
                prefix: prefix.to_owned(),
                name: name.to_owned(),
            })
        }
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['{', '}', '*', '/'])
}

/// Rule templates in a `matchit` router: the most specific template matching a path, with
/// axum's priorities.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    router: matchit::Router<usize>,
    templates: Vec<Template>,
}

impl Matcher {
    /// Adds `template` (once per text); its index. Templates matchit cannot tell apart,
    /// such as `/a/{x}` beside `/a/{y}`, are refused as axum refuses them.
    pub(crate) fn insert(&mut self, template: Template) -> Result<usize, String> {
        if let Some(index) = self.position(template.as_str()) {
            return Ok(index);
        }
        let index = self.templates.len();
        self.router
            .insert(template.as_str(), index)
            .map_err(|error| format!("cannot be told apart from another rule's route: {error}"))?;
        self.templates.push(template);
        Ok(index)
    }

    /// The index of the most specific template matching the undecoded `path`.
    pub(crate) fn at(&self, path: &str) -> Option<usize> {
        self.router.at(path).ok().map(|found| *found.value)
    }

    fn position(&self, text: &str) -> Option<usize> {
        self.templates.iter().position(|t| t.as_str() == text)
    }
}

/// The route template axum matched for a request, relative to the router the guard is
/// layered on: `MatchedPath` without the `NestedPath` prefix of a nested router.
pub(crate) fn routed_template(extensions: &http::Extensions) -> Option<Cow<'_, str>> {
    #[cfg(feature = "axum")]
    {
        let matched = extensions.get::<axum::extract::MatchedPath>()?.as_str();
        match extensions.get::<axum::extract::NestedPath>() {
            None => Some(Cow::Borrowed(matched)),
            Some(nested) => {
                let prefix = nested.as_str().trim_end_matches('/');
                let relative = matched.strip_prefix(prefix)?;
                match relative {
                    "" => Some(Cow::Borrowed("/")),
                    _ if relative.starts_with('/') => Some(Cow::Borrowed(relative)),
                    _ => None,
                }
            }
        }
    }
    #[cfg(not(feature = "axum"))]
    {
        let _ = extensions;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Template {
        Template::parse_rule(text).unwrap()
    }

    #[test]
    fn canonical_paths_decode_and_route() {
        let path = RequestPath::parse("/files/caf%C3%A9/a%20b").unwrap();
        assert!(path.is_routable());
        assert_eq!(path.decoded(), "/files/café/a b");
        let root = RequestPath::parse("/").unwrap();
        assert!(root.is_routable());
        assert_eq!(root.decoded(), "/");
    }

    #[test]
    fn paths_spelled_another_way_are_not_routable() {
        for path in [
            "/docs/%70rivate",
            "/docs/private%2E",
            "/a/%7e",
            "/a/%5C",
            "/a/b\\c",
            "/a/%25",
            "/a/",
        ] {
            let parsed = RequestPath::parse(path).unwrap();
            assert!(!parsed.is_routable(), "{path}");
        }
        assert_eq!(
            RequestPath::parse("/docs/%70rivate").unwrap().decoded(),
            "/docs/private"
        );
    }

    #[test]
    fn malformed_paths_are_refused() {
        for (path, error) in [
            ("relative", PathError::NotAbsolute),
            ("/a//b", PathError::EmptySegment),
            ("/a/./b", PathError::DotSegment),
            ("/a/../b", PathError::DotSegment),
            ("/a/%2e%2E/b", PathError::DotSegment),
            ("/a/%2f", PathError::EncodedSlash),
            ("/a/%2", PathError::BadEncoding),
            ("/a/%zz", PathError::BadEncoding),
            ("/a/%ff", PathError::BadEncoding),
        ] {
            assert_eq!(RequestPath::parse(path).unwrap_err(), error, "{path}");
        }
    }

    #[test]
    fn captures_are_decoded() {
        let path = RequestPath::parse("/files/a%20b/c").unwrap();
        let wildcard = template("/files/{*rest}");
        let captures = wildcard.captures(&path).unwrap();
        assert_eq!(captures, [("rest", "a b/c".to_owned())]);
        assert!(template("/files/{id}").captures(&path).is_none());
        assert!(template("/files/{a}/{b}/{c}").captures(&path).is_none());
        let pair = template("/files/{a}/{b}");
        let two = pair.captures(&path).unwrap();
        assert_eq!(two[1], ("b", "c".to_owned()));
        let routed = Template::parse_routed("/v{version}/x").unwrap();
        let path = RequestPath::parse("/v2/x").unwrap();
        assert_eq!(
            routed.captures(&path).unwrap(),
            [("version", "2".to_owned())]
        );
    }

    #[test]
    fn rule_templates_are_strict() {
        for bad in [
            "health",
            "/a/{*rest}/b",
            "/a/{}",
            "/a//b",
            "/a/{x",
            "/a/x}",
            "/a/v{x}",
            "/a/caf%C3%A9",
            "/a/b c",
            "/a/..",
            "/a/",
        ] {
            assert!(Template::parse_rule(bad).is_err(), "{bad}");
        }
        for good in ["/", "/health", "/a/{id}", "/a/{*rest}", "/v1.2/a-b_c~d"] {
            assert!(Template::parse_rule(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn the_matcher_prefers_literals_as_axum_does() {
        let mut matcher = Matcher::default();
        let wildcard = matcher.insert(template("/docs/{*rest}")).unwrap();
        let literal = matcher.insert(template("/docs/private")).unwrap();
        let param = matcher.insert(template("/users/{id}/x")).unwrap();
        assert_eq!(matcher.at("/docs/private"), Some(literal));
        assert_eq!(matcher.at("/docs/other"), Some(wildcard));
        assert_eq!(matcher.at("/users/a/x"), Some(param));
        // A parameter beside a wildcard at the same place is a conflict for matchit (and
        // so for axum).
        assert!(matcher.insert(template("/docs/{id}/x")).is_err());
        assert_eq!(matcher.at("/docs"), None);
        assert_eq!(matcher.insert(template("/docs/private")), Ok(literal));
        assert!(matcher.insert(template("/users/{other}/x")).is_err());
    }
}
