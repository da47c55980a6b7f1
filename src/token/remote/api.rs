//! The remote-source additions to [`Issuer`], [`VerifierBuilder`] and [`Verifier`].

use super::super::error::VerifierBuilderError;
use super::super::issuer::Issuer;
use super::super::keys::KeySet;
use super::super::verifier::{Verifier, VerifierBuilder};
use super::config::{RemoteJwks, Startup};
use super::error::RemoteError;
use super::source::KeySource;
use super::state;
use super::status::RemoteStatus;

#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
impl Issuer {
    /// Tokens whose `iss` equals `issuer` exactly, verified with keys fetched from `remote`.
    pub fn remote(issuer: impl Into<String>, remote: RemoteJwks) -> Self {
        let mut configured = Issuer::new(issuer, KeySet::new());
        configured.remote = Some(remote);
        configured
    }

    /// Tokens from an OpenID Connect provider: `iss` must equal `issuer`, and the keys come
    /// from the `jwks_uri` of its discovery document, whose own `issuer` must match too.
    /// Shorthand for `Issuer::remote(issuer, RemoteJwks::discover(issuer))`.
    pub fn discover(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let remote = RemoteJwks::discover(issuer.clone());
        Issuer::remote(issuer, remote)
    }

    /// Tokens with any `iss`, or none, verified with keys fetched from `remote`.
    ///
    /// # Security
    ///
    /// As [`Issuer::any`]: whoever holds one of the keys can mint tokens for any issuer
    /// name.
    pub fn any_remote(remote: RemoteJwks) -> Self {
        let mut configured = Issuer::any(KeySet::new());
        configured.remote = Some(remote);
        configured
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
impl VerifierBuilder {
    /// Builds as [`build`](VerifierBuilder::build) does, then fetches every remote key set
    /// once, concurrently, on the current tokio runtime (outside one, nothing is fetched
    /// and fail-fast sources fail with [`RemoteError::NoRuntime`]). A [`Startup::FailFast`] source
    /// that cannot be fetched fails the build; a [`Startup::Lazy`] one logs and keeps
    /// trying in the background.
    ///
    /// # Errors
    ///
    /// As [`build`](VerifierBuilder::build), and [`VerifierBuilderError::KeySource`] with the fetch
    /// error of a fail-fast source.
    pub async fn build_async(self) -> Result<Verifier, VerifierBuilderError> {
        let verifier = state::as_async_build(|| self.build())?;
        let remotes: Vec<_> = verifier
            .issuers()
            .iter()
            .filter_map(|issuer| match &issuer.keys {
                KeySource::Remote(remote) => Some(remote),
                KeySource::Static(_) => None,
            })
            .collect();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Polled by another executor: nothing can be fetched now.
            return match remotes.iter().any(|r| r.startup() == Startup::FailFast) {
                true => Err(VerifierBuilderError::KeySource(RemoteError::NoRuntime)),
                false => Ok(verifier),
            };
        };
        let fetches: Vec<_> = remotes
            .iter()
            .map(|remote| {
                let remote = std::sync::Arc::clone(remote);
                runtime.spawn(async move { remote.initial_fetch().await })
            })
            .collect();
        for (remote, fetch) in remotes.iter().zip(fetches) {
            let outcome = fetch.await.unwrap_or(Err(RemoteError::NoRuntime));
            if let Err(error) = outcome
                && remote.startup() == Startup::FailFast
            {
                return Err(VerifierBuilderError::KeySource(error));
            }
        }
        Ok(verifier)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "remote-jwks")))]
impl Verifier {
    /// Whether any issuer's keys come from a remote source.
    pub(crate) fn has_remote_sources(&self) -> bool {
        self.issuers()
            .iter()
            .any(|issuer| matches!(issuer.keys, KeySource::Remote(_)))
    }

    /// The condition of each remote key source, in configuration order; for readiness
    /// probes (see [`Health::is_ready`](super::Health::is_ready)) and metrics.
    pub fn remote_status(&self) -> Vec<RemoteStatus> {
        self.issuers()
            .iter()
            .filter_map(|issuer| match &issuer.keys {
                KeySource::Remote(remote) => Some(remote.status()),
                KeySource::Static(_) => None,
            })
            .collect()
    }
}
