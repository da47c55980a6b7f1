//! [`TokenType`]: a JOSE `typ` value read as the media type it names (RFC 7515 §4.1.9).
//!
//! RFC 7515 §4.1.9 lets a producer drop the `application/` prefix of a `typ` that has no
//! other `/`, and tells the recipient to read such a value as if the prefix were there;
//! media types compare without regard to case (RFC 2045 §5.1). So `at+jwt`,
//! `application/at+jwt` and `Application/AT+JWT` are one type, configured or received.
//!
//! Nothing else is normalized, and that is deliberate (the stricter reading):
//! - parameters are not stripped: `at+jwt; charset=x` is not `at+jwt`, so a token that
//!   carries them is refused rather than guessed at;
//! - no whitespace is trimmed;
//! - the prefix is only ever added to a value without `/`, never removed from or swapped in
//!   one that has it: `text/at+jwt` is not `at+jwt`, `application/application/at+jwt` is not
//!   `application/at+jwt`;
//! - an empty value, or one with nothing before or after its first `/`, names no media type
//!   and matches nothing, so neither a missing `typ` nor a configured `application/` can
//!   make a check pass.

/// A configured `typ`, held as the full media type in lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenType(Box<str>);

/// The prefix RFC 7515 §4.1.9 lets a `typ` omit.
const APPLICATION: &str = "application/";

impl TokenType {
    /// The type `configured` names; `None` when it names no media type at all.
    pub(crate) fn new(configured: &str) -> Option<Self> {
        if !is_media_type(configured) {
            return None;
        }
        let full = if configured.contains('/') {
            configured.to_ascii_lowercase()
        } else {
            format!("{APPLICATION}{}", configured.to_ascii_lowercase())
        };
        Some(TokenType(full.into()))
    }

    /// Whether a token's `typ` header names this type. Allocates nothing: it runs per token.
    pub(crate) fn matches(&self, typ: &str) -> bool {
        if !is_media_type(typ) {
            return false;
        }
        if typ.contains('/') {
            return self.0.eq_ignore_ascii_case(typ);
        }
        self.0
            .strip_prefix(APPLICATION)
            .is_some_and(|subtype| subtype.eq_ignore_ascii_case(typ))
    }
}

/// Not empty and, if it has a `/`, something on both sides of the first one.
fn is_media_type(value: &str) -> bool {
    match value.split_once('/') {
        Some((kind, subtype)) => !kind.is_empty() && !subtype.is_empty(),
        None => !value.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(configured: &str, typ: &str) -> bool {
        TokenType::new(configured).is_some_and(|t| t.matches(typ))
    }

    #[test]
    fn the_application_prefix_and_case_do_not_matter() {
        for configured in ["at+jwt", "application/at+jwt", "Application/AT+JWT"] {
            for typ in [
                "at+jwt",
                "AT+JWT",
                "application/at+jwt",
                "Application/AT+JWT",
            ] {
                assert!(same(configured, typ), "{configured} vs {typ}");
            }
        }
        assert!(same("application/jwt", "JWT"));
        assert!(same("JWT", "application/jwt"));
    }

    #[test]
    fn nothing_else_is_normalized() {
        for (configured, typ) in [
            ("at+jwt", "at+jwt; charset=x"),
            ("at+jwt", "application/at+jwt; charset=x"),
            ("at+jwt;charset=x", "at+jwt"),
            ("at+jwt", " at+jwt"),
            ("at+jwt", "text/at+jwt"),
            ("text/at+jwt", "at+jwt"),
            ("at+jwt", "application/application/at+jwt"),
            ("application/application/at+jwt", "application/at+jwt"),
            ("at+jwt", "at+jwt+extra"),
            ("at+jwt", "jwt"),
            ("application/at+jwt", "application/"),
        ] {
            assert!(!same(configured, typ), "{configured} vs {typ}");
        }
    }

    #[test]
    fn empty_types_match_nothing() {
        for configured in ["", "application/", "/at+jwt", "/"] {
            assert_eq!(TokenType::new(configured), None, "{configured}");
        }
        let jwt = TokenType::new("jwt").unwrap();
        for typ in ["", "/", "application/", "/jwt"] {
            assert!(!jwt.matches(typ), "{typ}");
        }
    }
}
