//! OAuth 2.0 client credentials (RFC 6749 §4.4): this service's own token from its
//! authorization server, cached and renewed before it expires.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

use super::cell::{Fetch, TokenCell};
use super::config::{Grant, grant_methods};
use super::destination::check_destination;
use super::endpoint::TokenEndpoint;
use super::error::{OutgoingBuilderError, OutgoingError};
use crate::token::client_auth::ClientAuth;

/// How this service obtains its own tokens with the client credentials grant.
///
/// Built with [`ClientCredentials::new`]; the endpoint must be `https://` (or `http://` to
/// a loopback host). The secret is never shown by `Debug` nor sent anywhere but the
/// endpoint, and redirects are never followed.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    grant: Grant,
}

impl ClientCredentials {
    /// Tokens from the token endpoint `endpoint`, authenticating as `auth`.
    pub fn new(endpoint: impl Into<String>, auth: ClientAuth) -> Self {
        ClientCredentials {
            grant: Grant::new(endpoint.into(), auth),
        }
    }

    /// Checks the endpoint and sets up the client. Nothing is fetched yet: the first
    /// request (or [`TokenSource::authorization`]) does.
    ///
    /// # Errors
    ///
    /// An endpoint that is not `https://` (nor `http://` to loopback) or holds credentials,
    /// or a root certificate that cannot be read.
    pub fn build(self) -> Result<TokenSource, OutgoingBuilderError> {
        let endpoint = TokenEndpoint::new(&self.grant.endpoint)?;
        Ok(TokenSource {
            inner: Arc::new(Inner {
                cell: TokenCell::new(Arc::clone(&self.grant.clock), i64::MAX),
                endpoint: Arc::new(endpoint),
                grant: self.grant,
            }),
        })
    }
}

grant_methods!(ClientCredentials);

/// A [`ClientCredentials`] after `build()`: one token shared by every request, renewed
/// before it expires by one request to the endpoint at a time. Cloning is cheap and shares
/// the token.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    grant: Grant,
    endpoint: Arc<TokenEndpoint>,
    cell: Arc<TokenCell>,
}

impl TokenSource {
    /// The `Authorization` value (`Bearer …`, marked sensitive) for a request to
    /// `destination`: for clients that are not tower services, such as reqwest.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use meshguard::outgoing::{ClientAuth, ClientCredentials};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let source = ClientCredentials::new(
    ///     "https://idp.example/oauth2/token",
    ///     ClientAuth::basic("orders", std::env::var("ORDERS_CLIENT_SECRET")?),
    /// )
    /// .scope("payments:write")
    /// .build()?;
    /// let url = "https://payments.internal/charges";
    /// let response = reqwest::Client::new()
    ///     .post(url)
    ///     .header(http::header::AUTHORIZATION, source.authorization(url).await?)
    ///     .send()
    ///     .await?;
    /// # let _ = response;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`OutgoingError::Destination`] for a destination that is not `https://` (nor
    /// `http://` to loopback); otherwise as [`authorization_header`](Self::authorization_header).
    pub async fn authorization(&self, destination: &str) -> Result<HeaderValue, OutgoingError> {
        check_destination(destination)?;
        self.authorization_header().await
    }

    /// The `Authorization` value, without a destination to check: the caller makes sure it
    /// goes over `https://` or to loopback only.
    ///
    /// # Errors
    ///
    /// When no token is usable and none can be had in time: the endpoint's refusal, its
    /// unavailability, a response that is not a bearer token response, a back-off after a
    /// recent failure, or the wait's timeout.
    pub async fn authorization_header(&self) -> Result<HeaderValue, OutgoingError> {
        if let Some(header) = self.ready() {
            return Ok(header);
        }
        let inner = &self.inner;
        inner.cell.wait(inner.grant.wait, || inner.fetch()).await
    }

    /// How many token requests were started: to watch the cache work.
    pub fn fetches(&self) -> u64 {
        self.inner.cell.fetches()
    }

    /// The header of a usable token, without waiting; starts a renewal in its last tenth.
    #[inline]
    pub(crate) fn ready(&self) -> Option<HeaderValue> {
        self.inner.cell.ready(|| self.inner.fetch())
    }

    /// The wait for a token, for the layer's slow path.
    pub(crate) fn wait_owned(
        &self,
    ) -> impl Future<Output = Result<HeaderValue, OutgoingError>> + Send + 'static {
        let source = self.clone();
        async move { source.authorization_header().await }
    }
}

impl Inner {
    fn fetch(&self) -> Fetch {
        let endpoint = Arc::clone(&self.endpoint);
        let form = self.grant.form("client_credentials", 0);
        Box::pin(async move { endpoint.request(form).await })
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("endpoint", &self.inner.endpoint.url().as_str())
            .field("auth", &self.inner.grant.endpoint.auth)
            .finish_non_exhaustive()
    }
}
