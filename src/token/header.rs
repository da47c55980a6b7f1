//! The JOSE headers a [`Verifier`](super::Verifier) read last, kept with what they said.
//!
//! The tokens of one issuer and key carry the same header text, and decoding and parsing it
//! was a tenth of an HMAC verification. A header text read successfully before says the same
//! thing again (reading is deterministic), so it is taken from here; every check on what it
//! says still runs on each token.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use base64_simd::{Out, URL_SAFE_NO_PAD};

use super::error::TokenError;
use super::json::{self, RawHeader};

/// Headers remembered at once; a text goes to one slot chosen by its length and last byte,
/// so a few keys or token types in turn do not push each other out.
const SLOTS: usize = 4;

/// Room on the stack for a decoded header; longer ones go to the heap.
const STACK_BYTES: usize = 256;

/// The longest header text remembered. Common headers (`alg`, `kid`, `typ`) are a few dozen
/// characters; one carrying a certificate chain is read afresh each time, as is any text an
/// attacker grows to make remembering it cost memory.
const MAX_REMEMBERED: usize = 512;

/// Recently read header texts and what they said.
pub(crate) struct HeaderMemo {
    slots: [ArcSwapOption<Remembered>; SLOTS],
}

/// One header text and its members, owned.
pub(crate) struct Remembered {
    text: Box<str>,
    alg: Box<str>,
    /// Shared with the tokens verified under this header.
    kid: Option<Arc<str>>,
    typ: Option<Arc<str>>,
    cty: Option<Box<str>>,
    crit: bool,
}

impl HeaderMemo {
    pub(crate) fn new() -> Self {
        Self {
            slots: Default::default(),
        }
    }

    /// The header whose base64url text is `text`: remembered, or decoded, parsed and then
    /// remembered (unless longer than [`MAX_REMEMBERED`]).
    ///
    /// # Errors
    ///
    /// [`TokenError::Malformed`] when the text is not base64url or not a header object,
    /// exactly as reading it afresh each time.
    pub(crate) fn read(&self, text: &str) -> Result<Arc<Remembered>, TokenError> {
        let slot = text
            .as_bytes()
            .last()
            .filter(|_| text.len() <= MAX_REMEMBERED)
            .and_then(|last| {
                self.slots
                    .get(text.len().wrapping_add(usize::from(*last)) % SLOTS)
            });
        if let Some(slot) = slot
            && let Some(remembered) = slot.load_full()
            && *remembered.text == *text
        {
            return Ok(remembered);
        }
        let remembered = Arc::new(Remembered::read(text)?);
        if let Some(slot) = slot {
            slot.store(Some(Arc::clone(&remembered)));
        }
        Ok(remembered)
    }
}

impl Remembered {
    fn read(text: &str) -> Result<Self, TokenError> {
        const NOT_BASE64: TokenError = TokenError::Malformed("header is not base64url");
        let mut stack = [0; STACK_BYTES];
        let heap;
        let bytes: &[u8] = if text.len() / 4 * 3 + 3 <= STACK_BYTES {
            URL_SAFE_NO_PAD
                .decode(text.as_bytes(), Out::from_slice(&mut stack))
                .map_err(|_| NOT_BASE64)?
        } else {
            heap = URL_SAFE_NO_PAD
                .decode_to_vec(text)
                .map_err(|_| NOT_BASE64)?;
            &heap
        };
        let header = json::parse_header(bytes).map_err(|_| TokenError::Malformed("bad header"))?;
        Ok(Self {
            text: text.into(),
            alg: header.alg.into(),
            kid: header.kid.map(Into::into),
            typ: header.typ.map(Into::into),
            cty: header.cty.map(Into::into),
            crit: header.crit,
        })
    }

    /// The header's members, as the verifier checks them.
    pub(crate) fn header(&self) -> RawHeader<'_> {
        RawHeader {
            alg: Cow::Borrowed(&self.alg),
            kid: self.kid.as_deref().map(Cow::Borrowed),
            typ: self.typ.as_deref().map(Cow::Borrowed),
            cty: self.cty.as_deref().map(Cow::Borrowed),
            crit: self.crit,
        }
    }

    /// `kid` and `typ`, to keep in a verified token.
    pub(crate) fn kid_and_typ(&self) -> (Option<Arc<str>>, Option<Arc<str>>) {
        (self.kid.clone(), self.typ.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as ENCODE;

    #[test]
    fn a_header_read_again_says_the_same_and_is_not_read_again() {
        let memo = HeaderMemo::new();
        let text = ENCODE.encode(br#"{"alg":"HS256","kid":"k\u0031","typ":"JWT","crit":[]}"#);
        let first = memo.read(&text).unwrap();
        let again = memo.read(&text).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let header = again.header();
        assert_eq!(header.alg, "HS256");
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.cty, None);
        assert!(header.crit);
        // Another header, in whatever slot, is read for what it says.
        let other = ENCODE.encode(br#"{"alg":"ES256","cty":"JWT"}"#);
        let read = memo.read(&other).unwrap();
        assert_eq!(read.header().alg, "ES256");
        assert_eq!(read.header().cty.as_deref(), Some("JWT"));
        assert_eq!(read.header().kid, None);
    }

    #[test]
    fn bad_headers_are_refused_every_time() {
        let memo = HeaderMemo::new();
        let duplicate = ENCODE.encode(br#"{"alg":"HS256","alg":"none"}"#);
        let long = ENCODE.encode(format!(r#"{{"alg":"HS256","x":"{}"}}"#, "a".repeat(400)));
        for _ in 0..2 {
            assert_eq!(
                memo.read(&duplicate).err(),
                Some(TokenError::Malformed("bad header"))
            );
            assert_eq!(
                memo.read("e30+").err(),
                Some(TokenError::Malformed("header is not base64url"))
            );
            let first = memo.read(&long).unwrap();
            assert_eq!(first.header().alg, "HS256");
            assert!(!Arc::ptr_eq(&first, &memo.read(&long).unwrap()));
        }
    }
}
