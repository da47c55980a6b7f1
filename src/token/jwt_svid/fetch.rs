//! Bundles fetched from a SPIFFE bundle endpoint and kept refreshed: [`BundleSet::fetch`].

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::super::remote::RemoteError;
use super::super::remote::RemoteJwks;
use super::super::remote::document::DocumentEndpoint;
use super::bundle::{BundleError, SpiffeBundle};
use super::bundles::BundleSet;
use crate::peer::TrustDomain;

/// The shortest wait between two attempts, whatever the configuration says, so that a
/// zero retry interval cannot turn a failing endpoint into a busy loop.
const MIN_RETRY: Duration = Duration::from_secs(1);

/// Why a bundle could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleFetchError {
    /// The endpoint is misconfigured or the request failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The endpoint sent a document that is not a valid bundle, or an older one than the
    /// set holds.
    #[error("SPIFFE bundle from `{url}`: {error}")]
    Bundle {
        /// The endpoint.
        url: String,
        /// What is wrong with the document.
        error: BundleError,
    },
    /// Not called on a tokio runtime: nothing could be fetched or refreshed.
    #[error("no tokio runtime to fetch the SPIFFE bundle on")]
    NoRuntime,
}

impl BundleFetchError {
    /// A short, stable, machine-readable reason: the [`RemoteError`]'s, `rollback`,
    /// `invalid_bundle` or `no_runtime`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Remote(error) => error.reason(),
            Self::Bundle {
                error: BundleError::Rollback { .. },
                ..
            } => "rollback",
            Self::Bundle { .. } => "invalid_bundle",
            Self::NoRuntime => "no_runtime",
        }
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
impl BundleSet {
    /// Fetches `trust_domain`'s bundle from a SPIFFE bundle endpoint, adds it, and keeps it
    /// refreshed in the background on the current tokio runtime.
    ///
    /// The endpoint is read under the rules of a remote JWKS ([`RemoteJwks::url`]):
    /// `https://` with the system's roots and any [added](RemoteJwks::add_root_certificate)
    /// (SPIFFE's `https_web` profile; the `https_spiffe` profile, which authenticates the
    /// endpoint by SPIFFE ID, is not supported), plain `http://` only to loopback unless
    /// allowed, redirects checked, timeouts, the body bound. The bundle is fetched again
    /// after its `spiffe_refresh_hint` (else its `Cache-Control` lifetime, else the
    /// configured one), within the configured lifetime bounds; a failed refresh is tried
    /// again after the refresh interval and keeps the current bundle, until it is older
    /// than its lifetime plus the stale period: then the trust domain's bundle is removed
    /// and its JWT-SVIDs are refused (fail closed). A refreshed bundle with a lower
    /// `spiffe_sequence` is refused, as by [`update`](Self::update). The refresh ends when
    /// every clone of the set is dropped.
    ///
    /// # Errors
    ///
    /// [`BundleFetchError::Remote`] for a refused URL or a failed first fetch,
    /// [`BundleFetchError::Bundle`] for an invalid or older first document,
    /// [`BundleFetchError::NoRuntime`] outside a tokio runtime. Nothing is added then.
    pub async fn fetch(
        &self,
        trust_domain: TrustDomain,
        endpoint: RemoteJwks,
    ) -> Result<(), BundleFetchError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| BundleFetchError::NoRuntime)?;
        let endpoint = DocumentEndpoint::new(&endpoint)?;
        let lifetime = self.fetch_once(&endpoint, &trust_domain).await?;
        tracing::info!(trust_domain = %trust_domain, url = %endpoint.url(), "SPIFFE bundle loaded");
        let weak = Arc::downgrade(&self.shared);
        runtime.spawn(async move {
            let mut fetched_at = Instant::now();
            let mut lifetime = lifetime;
            let mut wait = lifetime;
            let mut failing = false;
            loop {
                tokio::time::sleep(wait).await;
                // Held only while refreshing: dropping every clone of the set ends the loop.
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                let set = BundleSet { shared };
                match set.fetch_once(&endpoint, &trust_domain).await {
                    Ok(next) => {
                        if failing {
                            tracing::info!(trust_domain = %trust_domain, "SPIFFE bundle endpoint recovered");
                        }
                        (fetched_at, lifetime, wait, failing) = (Instant::now(), next, next, false);
                    }
                    Err(error) => {
                        let expired = fetched_at.elapsed() >= lifetime + endpoint.max_stale();
                        if expired && set.remove(&trust_domain) {
                            tracing::warn!(trust_domain = %trust_domain, reason = error.reason(), "SPIFFE bundle past its stale period and the endpoint still fails: refusing its JWT-SVIDs: {error}");
                        } else if !failing {
                            tracing::warn!(trust_domain = %trust_domain, reason = error.reason(), "SPIFFE bundle refresh failed, keeping the current bundle: {error}");
                        }
                        failing = true;
                        wait = endpoint.retry_after().max(MIN_RETRY);
                    }
                }
            }
        });
        Ok(())
    }

    /// One fetch: the bundle added, and how long it is fresh.
    async fn fetch_once(
        &self,
        endpoint: &DocumentEndpoint,
        trust_domain: &TrustDomain,
    ) -> Result<Duration, BundleFetchError> {
        let (body, cache_lifetime) = endpoint.get().await?;
        let invalid = |error| BundleFetchError::Bundle {
            url: endpoint.url().to_string(),
            error,
        };
        let bundle = SpiffeBundle::from_json(trust_domain.clone(), &body).map_err(invalid)?;
        let lifetime = match bundle.refresh_hint() {
            Some(hint) => endpoint.clamp(hint),
            None => cache_lifetime,
        };
        self.update(bundle).map_err(invalid)?;
        Ok(lifetime.max(MIN_RETRY))
    }
}
