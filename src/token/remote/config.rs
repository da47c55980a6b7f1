//! [`RemoteJwks`]: where a remote key set lives and how it is cached.

use std::time::Duration;

/// Keys are kept this long when the response sets no `Cache-Control: max-age`: 10 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);
/// The shortest cache lifetime a `max-age` (or `no-cache`) can impose: 1 minute.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(60);
/// The longest cache lifetime a `max-age` can impose: 1 hour.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(60 * 60);
/// The least time between two fetches caused by requests (an unknown `kid`, or a retry after
/// a failed fetch): 30 seconds.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// How long the last good keys keep verifying after they expire while the endpoint
/// fails: 24 hours. After that, verification fails closed.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest JWKS or discovery document accepted, counted while it streams in: 256 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// The bound on establishing a connection (TCP and TLS): 5 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound on one whole request, body included: 10 seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What happens when a verifier with this source is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Startup {
    /// Start without keys and fetch in the background; until the first fetch succeeds,
    /// tokens are rejected with `key_source_unavailable` (or, with
    /// [`Verifier::verify_async`](crate::token::Verifier::verify_async), wait for it).
    /// [`VerifierBuilder::build_async`](crate::token::VerifierBuilder::build_async) still
    /// fetches once, but logs a failure instead of returning it. The default.
    #[default]
    Lazy,
    /// Fetch during [`VerifierBuilder::build_async`](crate::token::VerifierBuilder::build_async)
    /// and fail it when the keys cannot be had. Such a source cannot be built with the
    /// synchronous `build()`.
    FailFast,
}

/// A JWKS fetched over HTTP(S), directly or through OpenID Connect discovery, with its cache
/// and failure policy. Give it to an issuer with
/// [`Issuer::remote`](crate::token::Issuer::remote).
///
/// Every knob has a safe default (the `DEFAULT_*` constants of this module); the URL is
/// checked when the verifier is built. The same rules (`https://`, plain `http://` only to
/// loopback unless [allowed](RemoteJwks::allow_plain_http), no credentials in the URL) hold
/// for a discovered `jwks_uri` and for every redirect target, which is refused before it
/// is contacted; at most three redirects are followed.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use meshguard::token::remote::{RemoteJwks, Startup};
///
/// let keycloak = RemoteJwks::discover("https://sso.example/realms/prod")
///     .ttl(Duration::from_secs(300))
///     .startup(Startup::FailFast);
/// let direct = RemoteJwks::url("https://idp.example/.well-known/jwks.json");
/// # let _ = (keycloak, direct);
/// ```
#[derive(Clone, Debug)]
pub struct RemoteJwks {
    pub(super) location: Location,
    pub(super) ttl: Duration,
    pub(super) min_ttl: Duration,
    pub(super) max_ttl: Duration,
    pub(super) refresh_interval: Duration,
    pub(super) max_stale: Duration,
    pub(super) max_body_bytes: usize,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) startup: Startup,
    pub(super) allow_plain_http: bool,
    pub(super) allow_symmetric_keys: bool,
    pub(super) extra_roots: Vec<Vec<u8>>,
}

/// Where the key set is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Location {
    /// The JWKS document itself.
    Jwks(String),
    /// An OpenID Connect issuer: its discovery document names the JWKS.
    Discovery(String),
}

impl RemoteJwks {
    /// The JWKS document at `url` (`https://`, or `http://` to a loopback address).
    pub fn url(url: impl Into<String>) -> Self {
        RemoteJwks::at(Location::Jwks(url.into()))
    }

    /// The JWKS named by `jwks_uri` in `{issuer}/.well-known/openid-configuration` (OpenID
    /// Connect Discovery 1.0 §4; a trailing `/` of `issuer` is dropped first). The
    /// document's `issuer` must equal `issuer` exactly, or its keys are refused (§4.3). The
    /// discovery document is read again whenever fetching the JWKS fails.
    pub fn discover(issuer: impl Into<String>) -> Self {
        RemoteJwks::at(Location::Discovery(issuer.into()))
    }

    fn at(location: Location) -> Self {
        RemoteJwks {
            location,
            ttl: DEFAULT_TTL,
            min_ttl: DEFAULT_MIN_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            max_stale: DEFAULT_MAX_STALE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            startup: Startup::Lazy,
            allow_plain_http: false,
            allow_symmetric_keys: false,
            extra_roots: Vec::new(),
        }
    }

    /// How long fetched keys are fresh when the response has no `Cache-Control: max-age`.
    /// Keys are refreshed in the background once four fifths of it have passed, so requests
    /// do not wait. Defaults to [`DEFAULT_TTL`].
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Bounds applied to the response's `Cache-Control: max-age` (and to [`ttl`]), so a
    /// server can neither pin keys for days nor cause a fetch per request. `no-cache` and
    /// `no-store` count as the lower bound. Defaults to [`DEFAULT_MIN_TTL`] ..=
    /// [`DEFAULT_MAX_TTL`]; an upper bound below the lower one is raised to it.
    ///
    /// [`ttl`]: RemoteJwks::ttl
    pub fn ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max.max(min);
        self
    }

    /// The least time between two fetches that requests cause: a token with an unknown
    /// `kid` triggers at most one refresh per interval (concurrent ones share it), and after
    /// a failed fetch the next attempt waits this long. A fetch whose connection fails
    /// before any answer (refused, reset, or closed unanswered, as a kept-alive connection
    /// is after the provider restarts) is tried once more at once, on a new connection,
    /// before it counts as failed; nothing else is retried. Defaults to
    /// [`DEFAULT_REFRESH_INTERVAL`].
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// How long expired keys keep verifying while the endpoint fails (down, hanging,
    /// garbage). Past it, tokens are rejected with `key_source_unavailable`.
    ///
    /// # Security
    ///
    /// A key the issuer withdrew stays trusted this long if the endpoint is unreachable.
    /// Defaults to [`DEFAULT_MAX_STALE`].
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// The largest document accepted, in bytes; a longer one is cut off while it streams in
    /// and counts as a failed fetch. Defaults to [`DEFAULT_MAX_BODY_BYTES`].
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The bound on connecting (TCP and TLS). Defaults to [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The bound on a whole request, reading the body included, so a server that hangs
    /// mid-response cannot hold a refresh. Defaults to [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Whether building the verifier waits for the keys and fails without them. Defaults to
    /// [`Startup::Lazy`].
    pub fn startup(mut self, startup: Startup) -> Self {
        self.startup = startup;
        self
    }

    /// Trusts this root certificate (DER) for the endpoint's TLS, besides the operating
    /// system's roots; for an identity provider behind a private CA.
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(der.into());
        self
    }

    /// The cache lifetime this configuration gives a response carrying `cache_control` (the
    /// value of its `Cache-Control` header): its `max-age` (the smallest, if repeated;
    /// `no-cache` and `no-store` count as zero), else [`ttl`](RemoteJwks::ttl), clamped to
    /// the [`ttl_bounds`](RemoteJwks::ttl_bounds). Malformed directives are ignored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use meshguard::token::remote::RemoteJwks;
    ///
    /// let remote = RemoteJwks::url("https://idp.example/jwks");
    /// assert_eq!(remote.cache_lifetime(Some("public, max-age=900")), Duration::from_secs(900));
    /// assert_eq!(remote.cache_lifetime(Some("max-age=5")), Duration::from_secs(60));
    /// assert_eq!(remote.cache_lifetime(None), Duration::from_secs(600));
    /// ```
    pub fn cache_lifetime(&self, cache_control: Option<&str>) -> Duration {
        super::cache::lifetime(cache_control, self.ttl, self.min_ttl, self.max_ttl)
    }

    /// Accepts `http://` URLs to hosts other than loopback addresses, for the JWKS, the
    /// issuer and a discovered `jwks_uri`.
    ///
    /// # Security
    ///
    /// Whoever can alter traffic on the way can then substitute their own keys and mint
    /// tokens this service accepts. Defaults to `https://` only (plain HTTP to `127.0.0.1`,
    /// `::1` and `localhost` is always allowed).
    pub fn allow_plain_http(mut self) -> Self {
        self.allow_plain_http = true;
        self
    }

    /// Uses HMAC secrets (`kty: oct`) found in the remote document.
    ///
    /// # Security
    ///
    /// A shared secret verifies and signs alike: whoever can read the document (anyone, for
    /// a public JWKS endpoint) can mint tokens this service accepts. Only for a document
    /// served privately to this service, over an authenticated channel. Defaults to skipping
    /// them, each listed with its reason among the skipped keys.
    pub fn allow_symmetric_keys(mut self) -> Self {
        self.allow_symmetric_keys = true;
        self
    }
}
