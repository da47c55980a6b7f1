//! Server-provided DPoP nonces (RFC 9449 §8): stateless, so that every replica sharing the
//! secret accepts the nonces of the others and nothing is stored per client.
//!
//! A nonce is the number of the period it was made in and an HMAC-SHA256 tag over that
//! number. It is accepted during its own period and the next, so a client that got one at
//! the end of a period still has a full period to use it; after that the proof is refused
//! with `use_dpop_nonce` and the current nonce.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::error::DpopBuilderError;

/// Bytes of a nonce: the period number (8) and the tag (32).
const NONCE_BYTES: usize = 40;

/// Characters of a nonce in base64url without padding.
const NONCE_CHARS: usize = 54;

/// Binds tags to this use, so that the secret serves no other HMAC by accident.
const LABEL: &[u8] = b"meshguard dpop nonce v1";

/// Makes and checks nonces.
pub(crate) struct Nonces {
    key: hmac::Key,
    period: i64,
}

impl Nonces {
    /// Nonces of `period` seconds under `secret`, or a random secret of this process.
    pub(crate) fn new(secret: Option<&[u8]>, period: i64) -> Result<Self, DpopBuilderError> {
        let key = match secret {
            Some(secret) if secret.len() < 32 => {
                return Err(DpopBuilderError::NonceSecretTooShort);
            }
            Some(secret) => hmac::Key::new(hmac::HMAC_SHA256, secret),
            None => {
                let mut random = [0; 32];
                SystemRandom::new()
                    .fill(&mut random)
                    .map_err(|_| DpopBuilderError::Random)?;
                hmac::Key::new(hmac::HMAC_SHA256, &random)
            }
        };
        Ok(Self {
            key,
            period: period.max(1),
        })
    }

    /// The nonce of the current period.
    pub(crate) fn current(&self, now: i64) -> String {
        let number = now.div_euclid(self.period);
        let mut bytes = [0; NONCE_BYTES];
        let (head, tail) = bytes.split_at_mut(8);
        head.copy_from_slice(&number.to_be_bytes());
        tail.copy_from_slice(self.tag(number).as_ref());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was made under this secret in the current or the previous period.
    pub(crate) fn accepts(&self, nonce: &str, now: i64) -> bool {
        if nonce.len() != NONCE_CHARS {
            return false;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((head, tag)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let number = i64::from_be_bytes(*head);
        let current = now.div_euclid(self.period);
        (number == current || number == current.saturating_sub(1))
            && hmac::verify(&self.key, &Self::message(number), tag).is_ok()
    }

    fn tag(&self, number: i64) -> hmac::Tag {
        hmac::sign(&self.key, &Self::message(number))
    }

    fn message(number: i64) -> Vec<u8> {
        let mut message = LABEL.to_vec();
        message.extend_from_slice(&number.to_be_bytes());
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_lives_for_its_period_and_the_next() {
        let nonces = Nonces::new(Some(&[7; 32]), 60).unwrap();
        let nonce = nonces.current(125);
        assert_eq!(nonce.len(), NONCE_CHARS);
        assert_eq!(nonces.current(179), nonce);
        assert!(nonces.accepts(&nonce, 120));
        assert!(nonces.accepts(&nonce, 239));
        assert!(!nonces.accepts(&nonce, 240));
        assert!(!nonces.accepts(&nonce, 119));
    }

    #[test]
    fn forged_and_foreign_nonces_are_refused() {
        let nonces = Nonces::new(Some(&[7; 32]), 60).unwrap();
        let other = Nonces::new(Some(&[8; 32]), 60).unwrap();
        assert!(!nonces.accepts(&other.current(100), 100));
        let mut forged = nonces.current(100).into_bytes();
        if let Some(last) = forged.last_mut() {
            *last = if *last == b'A' { b'B' } else { b'A' };
        }
        assert!(!nonces.accepts(&String::from_utf8(forged).unwrap(), 100));
        assert!(!nonces.accepts("", 100));
        assert!(!nonces.accepts(&"A".repeat(NONCE_CHARS), 100));
        assert_eq!(
            Nonces::new(Some(&[1; 31]), 60).err(),
            Some(DpopBuilderError::NonceSecretTooShort)
        );
        // Two replicas with random secrets do not accept each other's nonces.
        let a = Nonces::new(None, 60).unwrap();
        let b = Nonces::new(None, 60).unwrap();
        assert!(a.accepts(&a.current(5), 5));
        assert!(!b.accepts(&a.current(5), 5));
    }
}
