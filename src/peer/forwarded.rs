//! When to believe an `x-forwarded-client-cert` header, and which of its elements.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::HeaderName;

use super::authorize::Authorizer;
use super::error::PeerError;
use super::identity::{PeerIdentity, certificates_from_pem, has_spiffe_scheme, sha256};
use super::spiffe::SpiffeId;
use super::xfcc::{
    DEFAULT_MAX_XFCC_ELEMENTS, DEFAULT_MAX_XFCC_LEN, XfccElement, parse_xfcc_with_limits,
};

/// The `x-forwarded-client-cert` header name.
pub const XFCC_HEADER: HeaderName = HeaderName::from_static("x-forwarded-client-cert");

/// The connection a request arrived on: the direct peer, which may be a proxy.
#[derive(Debug, Clone, Copy)]
pub struct DirectPeer<'a> {
    identity: Option<&'a PeerIdentity>,
    transport: Transport,
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    Tcp(SocketAddr),
    Unix,
}

impl<'a> DirectPeer<'a> {
    /// A TCP connection from `remote`, with the identity of its verified client certificate
    /// if it presented one.
    pub fn tcp(remote: SocketAddr, identity: Option<&'a PeerIdentity>) -> Self {
        Self {
            identity,
            transport: Transport::Tcp(remote),
        }
    }

    /// A unix-socket connection (a same-pod sidecar), with the identity of its verified
    /// client certificate if it presented one.
    pub fn unix(identity: Option<&'a PeerIdentity>) -> Self {
        Self {
            identity,
            transport: Transport::Unix,
        }
    }

    /// The identity of the direct peer's own certificate.
    pub fn identity(&self) -> Option<&'a PeerIdentity> {
        self.identity
    }

    fn is_local(&self) -> bool {
        match self.transport {
            Transport::Unix => true,
            Transport::Tcp(addr) => match addr.ip() {
                IpAddr::V4(v4) => v4.is_loopback(),
                IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            },
        }
    }
}

/// Which element of a trusted header names the client.
///
/// Envoy appends its element last, so the rightmost element is the one the nearest proxy
/// (the trusted one) wrote; elements further left were written by hops further away, and
/// the leftmost may have been sent by the client itself unless every hop sanitizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ElementSelection {
    /// The last element, written by the direct peer. The default.
    #[default]
    Rightmost,
    /// The element written `n` trusted hops away: `FromRight(1)` is
    /// [`Rightmost`](Self::Rightmost), `FromRight(2)` the one before it. `FromRight(0)`
    /// selects nothing.
    FromRight(usize),
    /// The first element, Envoy's "original client" convention.
    ///
    /// # Security
    ///
    /// Only safe when the edge proxy sanitizes (Envoy `SANITIZE_SET`); otherwise a client
    /// can send its own header and choose who it is.
    Leftmost,
}

/// What to do with an XFCC header from a peer that is not a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Untrusted {
    #[default]
    Ignore,
    Reject,
}

/// When an `x-forwarded-client-cert` header is believed, and which element counts.
///
/// Off by default: [`XfccPolicy::disabled`] (the `Default`) never believes the header. A
/// header is honoured only when the direct peer is a trusted proxy: one whose own mTLS
/// identity a configured [`Authorizer`] accepts, or (opt-in) a loopback or unix-socket
/// connection from a same-pod sidecar. Otherwise it is ignored, and can be stripped with
/// [`strip_untrusted`](Self::strip_untrusted) before anything else reads it.
///
/// # Example
///
/// ```
/// use meshguard::peer::{Authorizer, DirectPeer, XFCC_HEADER, XfccPolicy};
///
/// let policy = XfccPolicy::builder().trust_loopback().build();
/// let mut headers = http::HeaderMap::new();
/// headers.insert(XFCC_HEADER, http::HeaderValue::from_static(
///     "By=spiffe://example.org/sidecar;\
///      Hash=5b7b3c7fd2b9bd33d1e1fcf5a4f3d0c9d1e0a7a8e5b6f6f8c9b4a3d2e1f0a9b8;\
///      URI=spiffe://example.org/ns/shop/sa/cart",
/// ));
///
/// let sidecar = DirectPeer::tcp("127.0.0.1:40000".parse()?, None);
/// let caller = policy.resolve(&sidecar, &headers)?.expect("a forwarded identity");
/// assert_eq!(caller.spiffe_id().map(|id| id.path()), Some("/ns/shop/sa/cart"));
///
/// let stranger = DirectPeer::tcp("10.0.0.7:40000".parse()?, None);
/// assert!(policy.resolve(&stranger, &headers)?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct XfccPolicy {
    proxies: Option<Authorizer>,
    loopback: bool,
    selection: ElementSelection,
    untrusted: Untrusted,
    max_len: usize,
    max_elements: usize,
}

/// Builds an [`XfccPolicy`] that believes XFCC from the proxies it names.
#[derive(Debug, Clone)]
#[must_use]
pub struct XfccPolicyBuilder {
    policy: XfccPolicy,
}

impl XfccPolicy {
    /// A policy that never believes the header. The default.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Starts a policy that trusts no proxy until one is named.
    pub fn builder() -> XfccPolicyBuilder {
        XfccPolicyBuilder {
            policy: Self {
                max_len: DEFAULT_MAX_XFCC_LEN,
                max_elements: DEFAULT_MAX_XFCC_ELEMENTS,
                ..Self::default()
            },
        }
    }

    /// Whether `direct` is a trusted proxy under this policy.
    pub fn is_trusted_proxy(&self, direct: &DirectPeer<'_>) -> bool {
        let by_identity = self
            .proxies
            .as_ref()
            .zip(direct.identity)
            .is_some_and(|(authz, id)| authz.authorize(id).is_ok());
        by_identity || (self.loopback && direct.is_local())
    }

    /// The identity of the caller: the client named by the selected XFCC element when the
    /// direct peer is a trusted proxy, otherwise the direct peer's own identity.
    ///
    /// A trusted proxy that sends no header forwards no client certificate, so the result
    /// is `None`; the proxy's own identity is never taken for its client's.
    ///
    /// # Errors
    ///
    /// From a trusted proxy: an unparsable header, more than one header field, no element
    /// at the selected position, or an element that does not yield an identity (see
    /// [`XfccElement::identity`]). From an untrusted peer:
    /// [`PeerError::XfccUntrusted`] if the policy was built with
    /// [`reject_untrusted_header`](XfccPolicyBuilder::reject_untrusted_header).
    pub fn resolve(
        &self,
        direct: &DirectPeer<'_>,
        headers: &HeaderMap,
    ) -> Result<Option<PeerIdentity>, PeerError> {
        let mut values = headers.get_all(&XFCC_HEADER).iter();
        let first = values.next();
        if !self.is_trusted_proxy(direct) {
            if first.is_some() && self.untrusted == Untrusted::Reject {
                return Err(PeerError::XfccUntrusted);
            }
            return Ok(direct.identity.cloned());
        }
        let Some(value) = first else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(PeerError::XfccMultipleHeaders);
        }
        let header = value.to_str().map_err(|_| {
            PeerError::Xfcc(super::xfcc::XfccError::Malformed {
                offset: 0,
                what: "header is not visible ASCII",
            })
        })?;
        let elements = parse_xfcc_with_limits(header, self.max_len, self.max_elements)?;
        self.select(&elements)?.identity().map(Some)
    }

    /// Removes XFCC headers unless `direct` is a trusted proxy, so that code reading
    /// headers later cannot be fooled; returns whether anything was removed.
    pub fn strip_untrusted(&self, direct: &DirectPeer<'_>, headers: &mut HeaderMap) -> bool {
        if self.is_trusted_proxy(direct) {
            return false;
        }
        headers.remove(&XFCC_HEADER).is_some()
    }

    /// The element this policy trusts among `elements`.
    ///
    /// # Errors
    ///
    /// [`PeerError::XfccElementMissing`] when there is no element at that position.
    pub fn select<'e>(&self, elements: &'e [XfccElement]) -> Result<&'e XfccElement, PeerError> {
        let element = match self.selection {
            ElementSelection::Rightmost => elements.last(),
            ElementSelection::Leftmost => elements.first(),
            ElementSelection::FromRight(n) => n
                .checked_sub(1)
                .and_then(|skip| elements.len().checked_sub(skip + 1))
                .and_then(|i| elements.get(i)),
        };
        element.ok_or(PeerError::XfccElementMissing)
    }
}

impl XfccPolicyBuilder {
    /// Trusts a direct peer whose own verified mTLS identity `proxies` accepts.
    pub fn trust_proxies(mut self, proxies: Authorizer) -> Self {
        self.policy.proxies = Some(proxies);
        self
    }

    /// Trusts a direct peer on a loopback address (`127.0.0.0/8`, `::1`) or a unix socket:
    /// a sidecar in the same pod or host.
    ///
    /// # Security
    ///
    /// Any process on the host can then assert any client identity. Use only when the
    /// service listens on loopback for its sidecar alone. Defaults to off.
    pub fn trust_loopback(mut self) -> Self {
        self.policy.loopback = true;
        self
    }

    /// Chooses which element names the client. Defaults to
    /// [`ElementSelection::Rightmost`], unlike Envoy's leftmost convention.
    pub fn select(mut self, selection: ElementSelection) -> Self {
        self.policy.selection = selection;
        self
    }

    /// Rejects requests carrying XFCC from a peer that is not a trusted proxy, instead of
    /// ignoring the header. Defaults to ignoring.
    pub fn reject_untrusted_header(mut self) -> Self {
        self.policy.untrusted = Untrusted::Reject;
        self
    }

    /// Bounds the header length in bytes. Defaults to
    /// [`DEFAULT_MAX_XFCC_LEN`](super::DEFAULT_MAX_XFCC_LEN).
    pub fn max_header_len(mut self, max: usize) -> Self {
        self.policy.max_len = max;
        self
    }

    /// Bounds the number of elements. Defaults to
    /// [`DEFAULT_MAX_XFCC_ELEMENTS`](super::DEFAULT_MAX_XFCC_ELEMENTS).
    pub fn max_elements(mut self, max: usize) -> Self {
        self.policy.max_elements = max;
        self
    }

    /// The policy. With no proxy named it believes no header, like
    /// [`XfccPolicy::disabled`].
    pub fn build(self) -> XfccPolicy {
        self.policy
    }
}

impl XfccElement {
    /// The client identity this element describes.
    ///
    /// With `Cert`, the URL-decoded PEM certificate (and `Chain`, which must start with
    /// it) is parsed as [`PeerIdentity::from_der_chain`] does, and a `Hash`, if present,
    /// must equal its hex SHA-256; the element's `URI`/`DNS`/`Subject` are then not used.
    /// Without `Cert`, `Hash` is required and gives the thumbprint, `URI` and `DNS` give
    /// the SANs (empty values dropped) and a SPIFFE ID is taken only from an element with
    /// exactly one `URI` (the X509-SVID rule), which must then be a valid workload ID.
    ///
    /// # Errors
    ///
    /// [`PeerError::XfccNoCertificate`], [`PeerError::XfccBadHash`],
    /// [`PeerError::XfccHashMismatch`], [`PeerError::XfccBadCertEncoding`],
    /// [`PeerError::XfccChainMismatch`], [`PeerError::InvalidSpiffeId`],
    /// [`PeerError::LeafRootPath`], or any error of the forwarded certificate.
    pub fn identity(&self) -> Result<PeerIdentity, PeerError> {
        let hash = self.hash().map(parse_hex_sha256).transpose()?;
        if let Some(cert) = self.cert() {
            let leaf = decode_pem(cert)?;
            let [leaf] =
                <[Vec<u8>; 1]>::try_from(leaf).map_err(|_| PeerError::XfccBadCertEncoding)?;
            if hash.is_some_and(|h| h != sha256(&leaf)) {
                return Err(PeerError::XfccHashMismatch);
            }
            let chain = match self.chain() {
                Some(chain) => decode_pem(chain)?,
                None => vec![leaf.clone()],
            };
            if chain.first() != Some(&leaf) {
                return Err(PeerError::XfccChainMismatch);
            }
            return PeerIdentity::from_forwarded_chain(&chain);
        }
        let sha256 = hash.ok_or(PeerError::XfccNoCertificate)?;
        let uris: Vec<String> = self
            .uris()
            .iter()
            .filter(|u| !u.is_empty())
            .cloned()
            .collect();
        let dns = self
            .dns()
            .iter()
            .filter(|d| !d.is_empty())
            .cloned()
            .collect();
        let spiffe_id = match uris.as_slice() {
            [uri] if has_spiffe_scheme(uri) => {
                let id = SpiffeId::new(uri).map_err(PeerError::InvalidSpiffeId)?;
                if id.path().is_empty() {
                    return Err(PeerError::LeafRootPath);
                }
                Some(id)
            }
            _ => None,
        };
        let subject = self.subject().filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(PeerIdentity::from_forwarded_fields(
            spiffe_id, dns, uris, subject, sha256,
        ))
    }
}

fn parse_hex_sha256(hex: &str) -> Result<[u8; 32], PeerError> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return Err(PeerError::XfccBadHash);
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else {
            return Err(PeerError::XfccBadHash);
        };
        *byte = (hex_digit(*hi)? << 4) | hex_digit(*lo)?;
    }
    Ok(out)
}

fn hex_digit(b: u8) -> Result<u8, PeerError> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
        .ok_or(PeerError::XfccBadHash)
}

/// URL-decodes (`%XX` only; `+` stays `+`, since PEM's base64 uses it) and PEM-parses.
fn decode_pem(encoded: &str) -> Result<Vec<Vec<u8>>, PeerError> {
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().ok_or(PeerError::XfccBadCertEncoding)?;
            let lo = bytes.next().ok_or(PeerError::XfccBadCertEncoding)?;
            let digit = |d: u8| hex_digit(d).map_err(|_| PeerError::XfccBadCertEncoding);
            decoded.push((digit(hi)? << 4) | digit(lo)?);
        } else {
            decoded.push(b);
        }
    }
    certificates_from_pem(&decoded).map_err(|e| match e {
        PeerError::ChainTooLong { .. } => e,
        _ => PeerError::XfccBadCertEncoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_hash_accepts_both_cases_and_rejects_bad_digits() {
        let lower = "ab".repeat(32);
        assert_eq!(parse_hex_sha256(&lower).unwrap(), [0xab; 32]);
        assert_eq!(parse_hex_sha256(&"AB".repeat(32)).unwrap(), [0xab; 32]);
        assert_eq!(
            parse_hex_sha256(&"zz".repeat(32)),
            Err(PeerError::XfccBadHash)
        );
        assert_eq!(parse_hex_sha256("abcdefg"), Err(PeerError::XfccBadHash));
    }

    #[test]
    fn from_right_counts_hops() {
        let elements = crate::peer::parse_xfcc("URI=a,URI=b,URI=c").unwrap();
        let pick = |s| {
            XfccPolicy::builder()
                .select(s)
                .build()
                .select(&elements)
                .map(|e| e.uris()[0].clone())
        };
        assert_eq!(pick(ElementSelection::Rightmost).unwrap(), "c");
        assert_eq!(pick(ElementSelection::FromRight(1)).unwrap(), "c");
        assert_eq!(pick(ElementSelection::FromRight(3)).unwrap(), "a");
        assert_eq!(pick(ElementSelection::Leftmost).unwrap(), "a");
        assert_eq!(
            pick(ElementSelection::FromRight(4)),
            Err(PeerError::XfccElementMissing)
        );
        assert_eq!(
            pick(ElementSelection::FromRight(0)),
            Err(PeerError::XfccElementMissing)
        );
    }
}
