//! The seam between an issuer and where its keys come from: fixed at configuration time, or
//! a remote JWKS whose current keys are swapped in atomically.

use std::ops::Deref;
use std::sync::Arc;

use super::super::claims::VerifiedToken;
use super::super::clock::Clock;
use super::super::error::{TokenError, VerifierBuilderError};
use super::super::issuer::{Issuer, PreparedKeys};
use super::super::verifier::Verifier;

/// Where a prepared issuer's keys live.
pub(crate) enum KeySource {
    /// Keys parsed and expanded once, at `build()`.
    Static(PreparedKeys),
    /// Keys fetched over HTTP, replaced atomically on refresh.
    #[cfg(feature = "remote-jwks")]
    Remote(Arc<super::state::RemoteState>),
}

/// The keys one verification uses, borrowed or pinned for its duration.
pub(crate) enum KeysRef<'a> {
    Static(&'a PreparedKeys),
    #[cfg(feature = "remote-jwks")]
    Remote(arc_swap::Guard<Arc<super::cache::Snapshot>>),
}

impl KeySource {
    /// The keys to verify with now. A remote source never blocks here: it answers from the
    /// keys it holds and, when they are due, asks for a refresh in the background.
    ///
    /// # Errors
    ///
    /// [`TokenError::KeySourceUnavailable`] when a remote source holds no keys, or only keys
    /// past their stale period.
    #[inline]
    pub(crate) fn load(&self) -> Result<KeysRef<'_>, TokenError> {
        match self {
            KeySource::Static(keys) => Ok(KeysRef::Static(keys)),
            #[cfg(feature = "remote-jwks")]
            KeySource::Remote(state) => state.load().map(KeysRef::Remote),
        }
    }

    /// After `error` from [`load`](KeySource::load) or key selection, waits for the refresh
    /// that may cure it (joining one in flight, or starting one if the rate limits allow).
    /// Returns whether a second attempt may see other keys: always for a remote source (a
    /// flight may have ended between the failed attempt and this call), never for static
    /// keys.
    pub(crate) async fn wait_for_refresh(&self, error: &TokenError) -> bool {
        match self {
            KeySource::Static(_) => {
                let _ = error;
                false
            }
            #[cfg(feature = "remote-jwks")]
            KeySource::Remote(state) => {
                state.refresh_after(error).await;
                true
            }
        }
    }
}

impl Deref for KeysRef<'_> {
    type Target = PreparedKeys;

    #[inline]
    fn deref(&self) -> &PreparedKeys {
        match self {
            KeysRef::Static(keys) => keys,
            #[cfg(feature = "remote-jwks")]
            KeysRef::Remote(snapshot) => &snapshot.keys,
        }
    }
}

impl Issuer {
    /// The remote key source this issuer was configured with, started against `clock`.
    pub(crate) fn remote_keys(
        &self,
        clock: &Arc<dyn Clock>,
    ) -> Result<Option<KeySource>, VerifierBuilderError> {
        #[cfg(feature = "remote-jwks")]
        if let Some(remote) = &self.remote {
            let state = super::state::RemoteState::start(
                remote,
                self.issuer.as_deref(),
                self.algorithms,
                clock,
            )?;
            return Ok(Some(KeySource::Remote(state)));
        }
        let _ = clock;
        Ok(None)
    }
}

impl Verifier {
    /// Verifies a token as [`verify`](Verifier::verify) does, but may wait for the issuer's
    /// remote key source: when it holds no keys yet (or only keys past their stale period),
    /// or when the token names an unknown `kid` and a refresh is allowed, the call joins
    /// the single refresh in flight (or starts one) and verifies against its result. With
    /// static keys it never waits.
    ///
    /// A refresh is bounded by the source's timeouts; the future may be dropped at any
    /// point without disturbing the refresh, which other requests share.
    ///
    /// # Errors
    ///
    /// As [`verify`](Verifier::verify); `unknown_key` and `key_source_unavailable` only
    /// once a refresh, if one was allowed, did not help.
    pub async fn verify_async(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let error = match self.verify(token) {
            Err(error @ (TokenError::UnknownKey | TokenError::KeySourceUnavailable)) => error,
            done => return done,
        };
        if self.wait_for_keys(token, &error).await {
            self.verify(token)
        } else {
            Err(error)
        }
    }

    /// Waits, when `error` allows it, for the refresh of the key source of the issuer
    /// `token` names; whether verifying again may now succeed.
    pub(crate) async fn wait_for_keys(&self, token: &str, error: &TokenError) -> bool {
        match self.issuer_for(token) {
            Some(issuer) => issuer.keys.wait_for_refresh(error).await,
            None => false,
        }
    }
}
