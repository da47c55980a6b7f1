//! The token endpoint: one POST of a grant's form, its answer read into a token or a typed
//! failure with the endpoint's wish about when to come back.

use std::time::Duration;

use reqwest::{Client, Url};
use zeroize::Zeroizing;

use super::error::{OutgoingBuilderError, OutgoingError};
use super::response::{IssuedToken, MAX_TOKEN_RESPONSE_BYTES, error_code, read_token_response};
use crate::token::client_auth::ClientAuth;
use crate::token::remote::discovery::checked_url;
use crate::token::remote::fetch::{HttpSettings, client_with, post_form_answer};

/// The longest `Retry-After` honoured: 5 minutes. A longer one would leave the service
/// without credentials for as long on one answer.
const MAX_RETRY_AFTER: u64 = 5 * 60;

/// How the endpoint is reached; shared by client credentials and token exchange.
#[derive(Clone, Debug)]
pub(crate) struct EndpointConfig {
    pub(crate) endpoint: String,
    pub(crate) auth: ClientAuth,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) extra_roots: Vec<Vec<u8>>,
}

/// A token endpoint and how this client authenticates to it.
pub(crate) struct TokenEndpoint {
    url: Url,
    auth: ClientAuth,
    client: Client,
}

/// A failed token request, and the seconds the endpoint asked to wait (`Retry-After`).
pub(crate) struct Failure {
    pub(crate) error: OutgoingError,
    pub(crate) retry_after: Option<u64>,
}

impl From<OutgoingError> for Failure {
    fn from(error: OutgoingError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

impl TokenEndpoint {
    /// Checks the endpoint URL and sets up the client: https (or http to loopback), no
    /// redirects followed.
    pub(crate) fn new(config: &EndpointConfig) -> Result<Self, OutgoingBuilderError> {
        let url = checked_url(&config.endpoint, false)
            .map_err(|e| OutgoingBuilderError::Endpoint(e.to_string().into()))?;
        let settings = HttpSettings {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            allow_plain_http: false,
            extra_roots: &config.extra_roots,
            // A 307 or 308 would resend the form (a client_secret_post secret, a subject
            // token) to wherever it points: a redirect is answered as a failure.
            follow_redirects: false,
        };
        let client = client_with(&settings, url.scheme() == "https")
            .map_err(|e| OutgoingBuilderError::Client(e.to_string().into()))?;
        Ok(TokenEndpoint {
            url,
            auth: config.auth.clone(),
            client,
        })
    }

    /// The endpoint's URL, for logs.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// POSTs `form` (the grant's parameters, client authentication added here) and reads
    /// the answer.
    pub(crate) async fn request(
        &self,
        mut form: Zeroizing<String>,
    ) -> Result<IssuedToken, Failure> {
        let authorization = self.auth.authenticate(&mut form);
        let answer = post_form_answer(
            &self.client,
            &self.url,
            &form,
            authorization.as_ref().map(|value| value.as_str()),
            MAX_TOKEN_RESPONSE_BYTES,
        )
        .await
        .map_err(|error| OutgoingError::Unavailable(error.to_string().into()))?;
        let retry_after = answer.retry_after.as_deref().and_then(delta_seconds);
        if answer.status == 200 {
            return read_token_response(&answer.body).map_err(Failure::from);
        }
        let error = match error_code(&answer.body) {
            Some(code) if (400..500).contains(&answer.status) => OutgoingError::Refused {
                code,
                status: answer.status,
            },
            _ => OutgoingError::Unavailable(format!("status {}", answer.status).into()),
        };
        Err(Failure { error, retry_after })
    }
}

/// A `Retry-After` in delta-seconds (RFC 9110 §10.2.3), at most [`MAX_RETRY_AFTER`]; an
/// HTTP-date is not read (the back-off applies instead).
fn delta_seconds(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().map(|s| s.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        assert_eq!(delta_seconds("7"), Some(7));
        assert_eq!(delta_seconds(" 12 "), Some(12));
        assert_eq!(delta_seconds("86400"), Some(MAX_RETRY_AFTER));
        for other in [
            "",
            "-1",
            "1.5",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "99999999999",
        ] {
            assert_eq!(delta_seconds(other), None, "{other}");
        }
    }
}
