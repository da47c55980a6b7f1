//! [`DocumentEndpoint`]: one document fetched under the rules of a remote key source, for
//! callers that read something other than an issuer's JWKS from it (SPIFFE bundles).

use std::time::Duration;

use reqwest::{Client, Url};

use super::config::{Location, RemoteJwks};
use super::discovery::checked_url;
use super::error::RemoteError;
use super::fetch;

/// A document at a fixed URL, fetched as a [`RemoteJwks`] is: `https://` (plain `http://`
/// only to loopback unless allowed), no credentials in the URL, redirects checked by the
/// same rules, the connect and request timeouts, the body bound counted while it streams.
pub(crate) struct DocumentEndpoint {
    url: Url,
    client: Client,
    config: RemoteJwks,
}

impl DocumentEndpoint {
    /// The endpoint `config` names.
    ///
    /// # Errors
    ///
    /// [`RemoteError::InvalidUrl`] for a URL the rules refuse or a discovery location
    /// (there is no issuer to discover here), [`RemoteError::PlainHttp`],
    /// [`RemoteError::Tls`] when the client cannot be set up.
    pub(crate) fn new(config: &RemoteJwks) -> Result<Self, RemoteError> {
        let raw = match &config.location {
            Location::Jwks(url) => url,
            Location::Discovery(issuer) => {
                return Err(RemoteError::InvalidUrl {
                    url: super::discovery::redact_userinfo(issuer),
                    why:
                        "give the document's own URL (`RemoteJwks::url`), not an issuer to discover"
                            .into(),
                });
            }
        };
        let url = checked_url(raw, config.allow_plain_http)?;
        let client = fetch::client(config, url.scheme() == "https")?;
        Ok(Self {
            url,
            client,
            config: config.clone(),
        })
    }

    /// The document's URL.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// Fetches the document: its body, and how long it may be kept by its `Cache-Control`
    /// (or the configured lifetime), within the configured bounds.
    ///
    /// # Errors
    ///
    /// The [`RemoteError`] of a failed request: transport, timeout, status other than 200,
    /// a body over the bound, a redirect the rules refuse.
    pub(crate) async fn get(&self) -> Result<(Vec<u8>, Duration), RemoteError> {
        let fetched = fetch::get(&self.client, &self.url, self.config.max_body_bytes).await?;
        let lifetime = self.config.cache_lifetime(fetched.cache_control.as_deref());
        Ok((fetched.body, lifetime))
    }

    /// `wanted` within the configured lifetime bounds.
    pub(crate) fn clamp(&self, wanted: Duration) -> Duration {
        wanted.clamp(
            self.config.min_ttl,
            self.config.max_ttl.max(self.config.min_ttl),
        )
    }

    /// How long to wait before trying again after a failed fetch.
    pub(crate) fn retry_after(&self) -> Duration {
        self.config.refresh_interval
    }

    /// How long a document past its lifetime may still be used while fetching fails.
    pub(crate) fn max_stale(&self) -> Duration {
        self.config.max_stale
    }
}
