//! Strict, single-pass parsing of the JOSE header and the JWT claims set.
//!
//! serde_json accepts duplicate member names (the last one wins) and nests up to 128 levels;
//! both are ways to make two parsers disagree about a token (RFC 8725 §3.7). These visitors
//! read each object once, refuse duplicate names at every level and bound the nesting depth,
//! while borrowing from the input wherever no escapes force a copy.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest nesting of arrays and objects accepted inside a header or claims set.
pub(crate) const MAX_DEPTH: u8 = 16;

/// The header members meshguard reads; every other member is checked for syntax only.
pub(crate) struct RawHeader<'a> {
    pub(crate) alg: Cow<'a, str>,
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
    pub(crate) cty: Option<Cow<'a, str>>,
    /// `crit` was present (any value: meshguard understands no extension).
    pub(crate) crit: bool,
}

/// A registered claim with the wrong JSON type, e.g. `"exp": "1700000000"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrongType(pub(crate) &'static str);

/// The claims meshguard interprets, plus the names of all the others.
#[derive(Default)]
pub(crate) struct RawClaims<'a> {
    pub(crate) iss: Option<Cow<'a, str>>,
    pub(crate) sub: Option<Cow<'a, str>>,
    pub(crate) aud: Option<Vec<Cow<'a, str>>>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) iat: Option<i64>,
    pub(crate) jti: Option<Cow<'a, str>>,
    pub(crate) client_id: Option<Cow<'a, str>>,
    pub(crate) scope: Option<Cow<'a, str>>,
    pub(crate) scp: Option<Vec<Cow<'a, str>>>,
    pub(crate) x5t_s256: Option<Cow<'a, str>>,
    /// A `cnf` object was present.
    pub(crate) cnf: bool,
    /// The `cnf` object has a member other than `x5t#S256`: a confirmation method (`jkt`,
    /// `jwk`, `jwe`, `jku`, …) that a bearer token's verification does not check.
    pub(crate) unverified_confirmation: bool,
    /// `cnf.jkt` (RFC 9449 §6.1): the thumbprint of the DPoP key the token is bound to.
    pub(crate) jkt: Option<Cow<'a, str>>,
    /// The `cnf` object has a member other than `x5t#S256` and `jkt`: a method that not
    /// even DPoP verification checks.
    pub(crate) other_confirmation: bool,
    /// Names of members not listed above, for required-claim checks.
    pub(crate) others: SeenNames<'a>,
    /// The first registered claim found with the wrong type.
    pub(crate) wrong_type: Option<WrongType>,
}

impl RawClaims<'_> {
    fn wrong(&mut self, name: &'static str) {
        self.wrong_type.get_or_insert(WrongType(name));
    }

    /// Whether the claims set has a top-level member called `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        match name {
            "iss" => self.iss.is_some(),
            "sub" => self.sub.is_some(),
            "aud" => self.aud.is_some(),
            "exp" => self.exp.is_some(),
            "nbf" => self.nbf.is_some(),
            "iat" => self.iat.is_some(),
            "jti" => self.jti.is_some(),
            "client_id" => self.client_id.is_some(),
            "scope" => self.scope.is_some(),
            "scp" => self.scp.is_some(),
            "cnf" => self.cnf,
            other => self.others.contains(other),
        }
    }
}

/// Parses the decoded header bytes.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<RawHeader<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(utf8(bytes)?);
    let header = de.deserialize_map(HeaderVisitor)?;
    de.end()?;
    Ok(header)
}

/// Parses the decoded claims bytes; the claims set must be a JSON object.
pub(crate) fn parse_claims(bytes: &[u8]) -> Result<RawClaims<'_>, serde_json::Error> {
    let mut claims = RawClaims::default();
    parse_claims_into(bytes, &mut claims)?;
    Ok(claims)
}

/// [`parse_claims`] into `claims`, which must be the default: the claims are written in
/// place instead of being moved out through each layer of the parser.
pub(crate) fn parse_claims_into<'a>(
    bytes: &'a [u8],
    claims: &mut RawClaims<'a>,
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(utf8(bytes)?);
    de.deserialize_map(ClaimsVisitor(claims))?;
    de.end()
}

/// The document as text. JSON is UTF-8 throughout (RFC 8259 §8.1), so this refuses exactly
/// what serde_json's byte reader refuses for its encoding, and validates once instead of
/// string by string as that reader does.
fn utf8(bytes: &[u8]) -> Result<&str, serde_json::Error> {
    std::str::from_utf8(bytes).map_err(|_| de::Error::custom("invalid UTF-8"))
}

/// Checks a whole JSON document for duplicate names and depth without keeping anything.
pub(crate) fn check_strict(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Walk { depth: 0 }.deserialize(&mut de)?;
    de.end()
}

/// A member name, borrowed from the input when it holds no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(StrVisitor).map(Name)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Below this many names a scan of the list is cheaper than hashing.
const SCAN_LIMIT: usize = 16;

/// Remembers the member names of one object and refuses a second occurrence.
///
/// A list scanned on each insert would make an object of n members cost n² comparisons
/// (a forged 16 KiB header with 1,500 members took milliseconds), so past
/// [`SCAN_LIMIT`] names move to a hash set keyed with the standard library's per-process
/// random SipHash keys, which input cannot aim collisions at.
pub(crate) enum SeenNames<'a> {
    Few(Vec<Cow<'a, str>>),
    Many(HashSet<Cow<'a, str>>),
}

impl<'a> SeenNames<'a> {
    fn new() -> Self {
        SeenNames::Few(Vec::new())
    }

    fn insert<E: de::Error>(&mut self, name: Cow<'a, str>) -> Result<(), E> {
        let fresh = match self {
            SeenNames::Few(names) if names.len() < SCAN_LIMIT => {
                let fresh = !names.contains(&name);
                names.push(name);
                fresh
            }
            SeenNames::Few(names) => {
                let mut set: HashSet<_> = names.drain(..).collect();
                let fresh = set.insert(name);
                *self = SeenNames::Many(set);
                fresh
            }
            SeenNames::Many(set) => set.insert(name),
        };
        if fresh {
            Ok(())
        } else {
            Err(E::custom("duplicate member name"))
        }
    }

    /// Whether `name` was seen.
    pub(crate) fn contains(&self, name: &str) -> bool {
        match self {
            SeenNames::Few(names) => names.iter().any(|seen| seen == name),
            SeenNames::Many(set) => set.contains(name),
        }
    }
}

impl Default for SeenNames<'_> {
    fn default() -> Self {
        SeenNames::new()
    }
}

/// What a value turned out to be, keeping only what the typed claims need.
enum Shape<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Other,
}

/// Walks any JSON value, enforcing unique names and [`MAX_DEPTH`], and reports its [`Shape`].
#[derive(Clone, Copy)]
struct Walk {
    depth: u8,
}

impl Walk {
    fn nested<E: de::Error>(self) -> Result<Walk, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom("JSON nested too deeply"));
        }
        Ok(Walk {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = Shape<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = Shape<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Shape::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Shape::Float(v as f64), Shape::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Shape::Float(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Shape::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Shape::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Shape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let inner = self.nested()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(Shape::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let inner = self.nested()?;
        let mut seen = SeenNames::new();
        while let Some(Name(name)) = map.next_key()? {
            seen.insert(name.clone())?;
            map.next_value_seed(inner)?;
        }
        Ok(Shape::Other)
    }
}

/// A string, or an array of strings (read element by element); anything else is `None`.
struct StringOrArray {
    walk: Walk,
}

impl<'de> DeserializeSeed<'de> for StringOrArray {
    type Value = Option<Vec<Cow<'de, str>>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringOrArray {
    type Value = Option<Vec<Cow<'de, str>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(vec![Cow::Borrowed(v)]))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(vec![Cow::Owned(v.to_owned())]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let element = self.walk.nested()?;
        let mut strings = Vec::new();
        let mut all_strings = true;
        while let Some(shape) = seq.next_element_seed(element)? {
            match shape {
                Shape::Str(s) => strings.push(s),
                _ => all_strings = false,
            }
        }
        Ok(all_strings.then_some(strings))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.walk.visit_map(map).map(|_| None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// The `cnf` claim (RFC 7800): an object whose `x5t#S256` member meshguard reads.
struct Confirmation {
    walk: Walk,
}

/// What a `cnf` object holds.
#[derive(Default)]
struct Confirmed<'a> {
    x5t_s256: Option<Cow<'a, str>>,
    jkt: Option<Cow<'a, str>>,
    /// A member other than `x5t#S256` and `jkt` is present.
    others: bool,
}

impl<'de> DeserializeSeed<'de> for Confirmation {
    /// `Err(())` when `cnf` is not an object or `x5t#S256` or `jkt` is not a string.
    type Value = Result<Confirmed<'de>, ()>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Confirmation {
    type Value = Result<Confirmed<'de>, ()>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a confirmation object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let inner = self.walk.nested()?;
        let mut seen = SeenNames::new();
        let mut confirmed = Ok(Confirmed::default());
        while let Some(Name(name)) = map.next_key()? {
            seen.insert(name.clone())?;
            let value = map.next_value_seed(inner)?;
            let Ok(found) = &mut confirmed else {
                continue;
            };
            let slot = match name.as_ref() {
                "x5t#S256" => &mut found.x5t_s256,
                "jkt" => &mut found.jkt,
                _ => {
                    found.others = true;
                    continue;
                }
            };
            match value {
                Shape::Str(s) => *slot = Some(s),
                _ => confirmed = Err(()),
            }
        }
        Ok(confirmed)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.walk.visit_seq(seq).map(|_| Err(()))
    }

    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
}

/// Tracks which registered member names an object has used, one bit each, so the common
/// case (only registered names) needs no list of seen names.
struct Registered(u32);

impl Registered {
    fn first_use<E: de::Error>(&mut self, bit: u32) -> Result<(), E> {
        if self.0 & (1 << bit) != 0 {
            return Err(E::custom("duplicate member name"));
        }
        self.0 |= 1 << bit;
        Ok(())
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let member = Walk { depth: 1 };
        let mut registered = Registered(0);
        let mut others = SeenNames::new();
        let mut alg = None;
        let mut header = RawHeader {
            alg: Cow::Borrowed(""),
            kid: None,
            typ: None,
            cty: None,
            crit: false,
        };
        while let Some(Name(name)) = map.next_key()? {
            let (bit, slot) = match name.as_ref() {
                "alg" => (0, &mut alg),
                "kid" => (1, &mut header.kid),
                "typ" => (2, &mut header.typ),
                "cty" => (3, &mut header.cty),
                "crit" => {
                    registered.first_use(4)?;
                    header.crit = true;
                    map.next_value_seed(member)?;
                    continue;
                }
                _ => {
                    others.insert(name)?;
                    map.next_value_seed(member)?;
                    continue;
                }
            };
            registered.first_use(bit)?;
            match map.next_value_seed(member)? {
                Shape::Str(s) => *slot = Some(s),
                _ => return Err(de::Error::custom(format_args!("`{name}` is not a string"))),
            }
        }
        header.alg = alg.ok_or_else(|| de::Error::missing_field("alg"))?;
        Ok(header)
    }
}

struct ClaimsVisitor<'c, 'de>(&'c mut RawClaims<'de>);

fn numeric_date(shape: Shape<'_>) -> Option<i64> {
    match shape {
        Shape::Int(v) => Some(v),
        // RFC 7519 §2 allows fractional seconds; whole seconds are what the checks compare.
        Shape::Float(v) if v.is_finite() && v.abs() < 9.0e15 => Some(v.floor() as i64),
        _ => None,
    }
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims set object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let member = Walk { depth: 1 };
        let mut registered = Registered(0);
        let mut others = SeenNames::new();
        let claims = self.0;
        while let Some(Name(name)) = map.next_key()? {
            let (slot, label, bit) = match name.as_ref() {
                "iss" => (&mut claims.iss, "iss", 0),
                "sub" => (&mut claims.sub, "sub", 1),
                "jti" => (&mut claims.jti, "jti", 2),
                "client_id" => (&mut claims.client_id, "client_id", 3),
                "scope" => (&mut claims.scope, "scope", 4),
                "exp" | "nbf" | "iat" => {
                    let (slot, label, bit) = match name.as_ref() {
                        "exp" => (&mut claims.exp, "exp", 5),
                        "nbf" => (&mut claims.nbf, "nbf", 6),
                        _ => (&mut claims.iat, "iat", 7),
                    };
                    registered.first_use(bit)?;
                    match numeric_date(map.next_value_seed(member)?) {
                        Some(date) => *slot = Some(date),
                        None => claims.wrong(label),
                    }
                    continue;
                }
                "aud" | "scp" => {
                    let (slot, label, bit) = match name.as_ref() {
                        "aud" => (&mut claims.aud, "aud", 8),
                        _ => (&mut claims.scp, "scp", 9),
                    };
                    registered.first_use(bit)?;
                    match map.next_value_seed(StringOrArray { walk: member })? {
                        Some(list) => *slot = Some(list),
                        None => claims.wrong(label),
                    }
                    continue;
                }
                "cnf" => {
                    registered.first_use(10)?;
                    match map.next_value_seed(Confirmation { walk: member })? {
                        Ok(confirmed) => {
                            claims.x5t_s256 = confirmed.x5t_s256;
                            claims.unverified_confirmation =
                                confirmed.others || confirmed.jkt.is_some();
                            claims.other_confirmation = confirmed.others;
                            claims.jkt = confirmed.jkt;
                            claims.cnf = true;
                        }
                        Err(()) => claims.wrong("cnf"),
                    }
                    continue;
                }
                _ => {
                    others.insert(name)?;
                    map.next_value_seed(member)?;
                    continue;
                }
            };
            registered.first_use(bit)?;
            match map.next_value_seed(member)? {
                Shape::Str(s) => *slot = Some(s),
                _ => claims.wrong(label),
            }
        }
        claims.others = others;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_are_refused_at_every_level() {
        assert!(parse_claims(br#"{"sub":"a","sub":"b"}"#).is_err());
        assert!(parse_claims(br#"{"x":1,"x":2}"#).is_err());
        assert!(parse_claims(br#"{"x":{"y":1,"y":1}}"#).is_err());
        assert!(parse_claims(br#"{"x":[{"y":1,"y":1}]}"#).is_err());
        assert!(parse_claims(br#"{"s\u0075b":"a","sub":"b"}"#).is_err());
        assert!(parse_header(br#"{"alg":"HS256","alg":"none"}"#).is_err());
    }

    #[test]
    fn duplicates_are_refused_past_the_scan_limit() {
        let members = |n: usize| (0..n).map(|i| format!(r#""m{i}":0"#)).collect::<Vec<_>>();
        for n in [SCAN_LIMIT - 1, SCAN_LIMIT, SCAN_LIMIT + 1, 500] {
            let mut names = members(n);
            let unique = format!("{{{}}}", names.join(","));
            assert!(parse_claims(unique.as_bytes()).is_ok(), "{n}");
            assert!(check_strict(unique.as_bytes()).is_ok(), "{n}");
            assert!(parse_claims(unique.as_bytes()).unwrap().has("m0"));
            names.push(r#""m0":1"#.to_owned());
            let twice = format!("{{{}}}", names.join(","));
            assert!(parse_claims(twice.as_bytes()).is_err(), "{n}");
            assert!(
                parse_header(format!(r#"{{"alg":"HS256",{}}}"#, &twice[1..]).as_bytes()).is_err()
            );
            assert!(
                check_strict(format!(r#"{{"a":{twice}}}"#).as_bytes()).is_err(),
                "{n}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!(r#"{{"x":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(parse_claims(deep(usize::from(MAX_DEPTH) - 1).as_bytes()).is_ok());
        assert!(parse_claims(deep(usize::from(MAX_DEPTH)).as_bytes()).is_err());
    }

    #[test]
    fn registered_claims_of_the_wrong_type_are_reported() {
        let claims = parse_claims(br#"{"exp":"1700000000","sub":"a"}"#).unwrap();
        assert_eq!(claims.wrong_type, Some(WrongType("exp")));
        let claims = parse_claims(br#"{"aud":["a",1]}"#).unwrap();
        assert_eq!(claims.wrong_type, Some(WrongType("aud")));
        let claims = parse_claims(br#"{"cnf":"x"}"#).unwrap();
        assert_eq!(claims.wrong_type, Some(WrongType("cnf")));
    }

    #[test]
    fn claims_are_read() {
        let claims = parse_claims(
            br#"{"iss":"i","aud":["a","b"],"exp":10.7,"scp":"x","cnf":{"x5t#S256":"t"},"k":[1]}"#,
        )
        .unwrap();
        assert_eq!(claims.iss.as_deref(), Some("i"));
        assert_eq!(claims.aud.unwrap(), ["a", "b"]);
        assert_eq!(claims.exp, Some(10));
        assert_eq!(claims.scp.unwrap(), ["x"]);
        assert_eq!(claims.x5t_s256.as_deref(), Some("t"));
        assert!(!claims.unverified_confirmation);
        assert!(claims.others.contains("k"));
    }

    #[test]
    fn confirmation_methods_other_than_x5t_s256_are_noted() {
        for (cnf, thumbprint, unchecked) in [
            (r#"{"jkt":"t"}"#, None, true),
            (r#"{"jwk":{"kty":"OKP"}}"#, None, true),
            (r#"{"x5t#S256":"t","jkt":"u"}"#, Some("t"), true),
            (r#"{"jkt":"u","x5t#S256":"t"}"#, Some("t"), true),
            (r#"{"x5t#S256":"t"}"#, Some("t"), false),
            ("{}", None, false),
        ] {
            let json = format!(r#"{{"cnf":{cnf}}}"#);
            let claims = parse_claims(json.as_bytes()).unwrap();
            assert_eq!(claims.x5t_s256.as_deref(), thumbprint, "{cnf}");
            assert_eq!(claims.unverified_confirmation, unchecked, "{cnf}");
            assert_eq!(claims.wrong_type, None, "{cnf}");
        }
        let claims = parse_claims(br#"{"cnf":{"x5t#S256":1,"jkt":"u"}}"#).unwrap();
        assert_eq!(claims.wrong_type, Some(WrongType("cnf")));
    }

    #[test]
    fn the_dpop_thumbprint_is_read_apart_from_other_methods() {
        for (cnf, jkt, other) in [
            (r#"{"jkt":"t"}"#, Some("t"), false),
            (r#"{"jkt":"t","jwk":{}}"#, Some("t"), true),
            (r#"{"x5t#S256":"x","jkt":"t"}"#, Some("t"), false),
            (r#"{"jwk":{}}"#, None, true),
        ] {
            let json = format!(r#"{{"cnf":{cnf}}}"#);
            let claims = parse_claims(json.as_bytes()).unwrap();
            assert_eq!(claims.jkt.as_deref(), jkt, "{cnf}");
            assert_eq!(claims.other_confirmation, other, "{cnf}");
            assert!(claims.unverified_confirmation, "{cnf}");
        }
        let claims = parse_claims(br#"{"cnf":{"jkt":["t"]}}"#).unwrap();
        assert_eq!(claims.wrong_type, Some(WrongType("cnf")));
        assert_eq!(claims.jkt, None);
    }

    #[test]
    fn non_objects_and_trailing_data_are_refused() {
        for bad in [
            &b"[]"[..],
            b"\"eyJ.x.y\"",
            b"{} {}",
            b"{",
            b"{\"a\":1,}",
            b"\xff",
        ] {
            assert!(parse_claims(bad).is_err());
        }
        assert!(parse_header(br#"{"alg":1}"#).is_err());
        assert!(parse_header(br#"{"typ":"JWT"}"#).is_err());
        assert!(check_strict(br#"{"a":{"b":1,"b":2}}"#).is_err());
    }
}
