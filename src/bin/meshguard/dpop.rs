//! The DPoP flags of `verify-token`: a proof, the request's method and URL (RFC 9449).

use meshguard::token::VerifiedToken;
use meshguard::token::Verifier;
use meshguard::token::dpop::DpopVerifier;

/// `--dpop-proof PROOF --method M --url U`: verify the token as DPoP-bound, with this proof
/// for this request.
#[derive(clap::Args)]
pub(crate) struct DpopArgs {
    /// A DPoP proof (RFC 9449) for the token; the token must be bound to its key (cnf.jkt).
    #[arg(long = "dpop-proof", value_name = "PROOF", requires_all = ["method", "url"])]
    dpop_proof: Option<String>,
    /// The HTTP method of the request the proof is for (with --dpop-proof).
    #[arg(long, value_name = "M", requires = "dpop_proof")]
    method: Option<String>,
    /// The absolute URL of the request the proof is for (with --dpop-proof).
    #[arg(long, value_name = "U", requires = "dpop_proof")]
    url: Option<String>,
}

/// A verification's outcome: the token, or the reason it was rejected.
pub(crate) type Outcome = Result<VerifiedToken, &'static str>;

impl DpopArgs {
    /// Verifies `token` with `verifier`, and with the proof when one was given.
    ///
    /// # Errors
    ///
    /// The message of a configuration error (exit 2).
    pub(crate) fn verify(&self, verifier: &Verifier, token: &str) -> Result<Outcome, String> {
        let Some((proof, method, url)) = self.request() else {
            return Ok(verifier.verify(token).map_err(|e| e.reason()));
        };
        let dpop = dpop_verifier(verifier)?;
        Ok(dpop
            .verify(token, proof, method, url)
            .map(|verified| verified.into_token())
            .map_err(|e| e.reason()))
    }

    /// [`verify`](Self::verify), waiting for a remote key source.
    #[cfg(feature = "remote-jwks")]
    pub(crate) async fn verify_async(
        &self,
        verifier: &Verifier,
        token: &str,
    ) -> Result<Outcome, String> {
        let Some((proof, method, url)) = self.request() else {
            return Ok(verifier.verify_async(token).await.map_err(|e| e.reason()));
        };
        let dpop = dpop_verifier(verifier)?;
        Ok(dpop
            .verify_async(token, proof, method, url)
            .await
            .map(|verified| verified.into_token())
            .map_err(|e| e.reason()))
    }

    fn request(&self) -> Option<(&str, &str, &str)> {
        Some((
            self.dpop_proof.as_deref()?,
            self.method.as_deref()?,
            self.url.as_deref()?,
        ))
    }
}

/// The CLI checks one proof once: the replay cache has nothing to remember it against.
fn dpop_verifier(verifier: &Verifier) -> Result<DpopVerifier, String> {
    DpopVerifier::builder(verifier.clone())
        .replay_capacity(1)
        .build()
        .map_err(|e| e.to_string())
}
