//! The JWS signature algorithms meshguard verifies, and sets of them.

use std::fmt;
use std::str::FromStr;

/// A JWS signature algorithm (RFC 7518 §3, RFC 8037 §3.1, RFC 9864 §2.2).
///
/// `none` is deliberately absent: it cannot be named, configured or accepted.
///
/// [`EdDSA`](Algorithm::EdDSA) and [`Ed25519`](Algorithm::Ed25519) compute the same
/// signature on the same keys, but they are two names and meshguard keeps them apart: an
/// allowed-algorithm list must name each it accepts, and a key whose JWK says `alg: EdDSA`
/// verifies only tokens saying `EdDSA` (and one saying `Ed25519` only `Ed25519`), since a
/// key's `alg` names the one algorithm it is for (RFC 7517 §4.4, RFC 8725 §3.1). An Ed25519
/// key without `alg` verifies both. Ed448 (`Ed448`, or `EdDSA` on an Ed448 key) is not
/// supported: ring has no Ed448.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA on Ed25519, by the polymorphic name RFC 8037 §3.1 registered (and RFC 9864
    /// deprecates); meshguard knows no other curve for it.
    EdDSA,
    /// EdDSA on Ed25519, by its fully-specified name (RFC 9864 §2.2).
    Ed25519,
}

/// Why an Ed448 key is refused: a JWK or PEM key on that curve, or a JWK naming RFC 9864's
/// `Ed448`, is a real key meshguard cannot use, and saying so beats "unsupported algorithm".
pub(crate) const NO_ED448: &str = "Ed448 is not supported (ring implements Ed25519 only)";

/// The kind of key an [`Algorithm`] needs; a key of one family never serves another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFamily {
    /// A shared secret (`kty: oct`).
    Hmac,
    /// An RSA public key.
    Rsa,
    /// An elliptic-curve public key on P-256 or P-384.
    Ec,
    /// An Edwards-curve public key (`kty: OKP`).
    Okp,
}

impl Algorithm {
    /// Every supported algorithm, in a fixed order.
    pub const ALL: [Algorithm; 13] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::Ed25519,
    ];

    /// The name used in the JOSE `alg` header parameter.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::Ed25519 => "Ed25519",
        }
    }

    /// The key family that can verify this algorithm.
    pub const fn family(self) -> KeyFamily {
        match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeyFamily::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 | Algorithm::ES384 => KeyFamily::Ec,
            Algorithm::EdDSA | Algorithm::Ed25519 => KeyFamily::Okp,
        }
    }

    /// Whether the algorithm is a shared-secret (HMAC) one.
    pub const fn is_symmetric(self) -> bool {
        matches!(self.family(), KeyFamily::Hmac)
    }

    /// The minimum HMAC secret length in bytes (RFC 7518 §3.2: at least the hash size).
    pub(crate) const fn min_hmac_secret_len(self) -> usize {
        match self {
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => 32,
        }
    }

    /// Exact match on the registered name; `none` and every unknown name yield `None`.
    pub fn from_jose_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The name jsonwebtoken 12 has for the algorithm. It has no `Ed25519`; its `EdDSA` is
    /// the same signature on the same key, which is all its traits ask about.
    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::HS384 => jsonwebtoken::Algorithm::HS384,
            Algorithm::HS512 => jsonwebtoken::Algorithm::HS512,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::RS384 => jsonwebtoken::Algorithm::RS384,
            Algorithm::RS512 => jsonwebtoken::Algorithm::RS512,
            Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
            Algorithm::PS384 => jsonwebtoken::Algorithm::PS384,
            Algorithm::PS512 => jsonwebtoken::Algorithm::PS512,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::ES384 => jsonwebtoken::Algorithm::ES384,
            Algorithm::EdDSA | Algorithm::Ed25519 => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an algorithm name that meshguard does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm `{0}`")]
pub struct UnsupportedAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnsupportedAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Algorithm::from_jose_name(name).ok_or_else(|| UnsupportedAlgorithm(name.to_owned()))
    }
}

/// A set of [`Algorithm`]s, as a bit set so membership tests cost nothing on the request path.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// The empty set.
    pub const fn empty() -> Self {
        AlgorithmSet(0)
    }

    /// Every supported algorithm.
    pub fn all() -> Self {
        Algorithm::ALL.into_iter().collect()
    }

    /// Every algorithm of one key family.
    pub fn of_family(family: KeyFamily) -> Self {
        Algorithm::ALL
            .into_iter()
            .filter(|alg| alg.family() == family)
            .collect()
    }

    /// Adds an algorithm.
    pub fn insert(&mut self, alg: Algorithm) {
        self.0 |= alg.bit();
    }

    /// Whether the set holds `alg`.
    pub const fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The algorithms in both sets.
    pub const fn intersection(self, other: AlgorithmSet) -> AlgorithmSet {
        AlgorithmSet(self.0 & other.0)
    }

    /// The members, in [`Algorithm::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |alg| self.contains(*alg))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        let mut set = AlgorithmSet::empty();
        for alg in iter {
            set.insert(alg);
        }
        set
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_in_any_casing_is_not_an_algorithm() {
        for name in [
            "none", "None", "NONE", "nOnE", "", "hs256", "ES512", "RS1", "Ed448", "ed25519",
            "ED25519", "eddsa",
        ] {
            assert_eq!(Algorithm::from_jose_name(name), None, "{name}");
        }
    }

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
        }
    }

    #[test]
    fn both_ed25519_names_are_known_and_distinct() {
        assert_eq!("Ed25519".parse::<Algorithm>(), Ok(Algorithm::Ed25519));
        assert_eq!("EdDSA".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
        let okp = AlgorithmSet::of_family(KeyFamily::Okp);
        assert_eq!(
            okp.iter().collect::<Vec<_>>(),
            [Algorithm::EdDSA, Algorithm::Ed25519]
        );
        let eddsa: AlgorithmSet = [Algorithm::EdDSA].into_iter().collect();
        assert!(!eddsa.contains(Algorithm::Ed25519));
    }

    #[test]
    fn set_operations() {
        let rsa = AlgorithmSet::of_family(KeyFamily::Rsa);
        assert!(rsa.contains(Algorithm::PS512));
        assert!(!rsa.contains(Algorithm::HS256));
        let some: AlgorithmSet = [Algorithm::RS256, Algorithm::ES256].into_iter().collect();
        assert_eq!(
            rsa.intersection(some).iter().collect::<Vec<_>>(),
            [Algorithm::RS256]
        );
        assert!(AlgorithmSet::empty().is_empty());
    }
}
