//! The HTTP side: a reqwest client on rustls with ring, and a GET whose body is bounded
//! while it streams in.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "outgoing")]
use reqwest::header::RETRY_AFTER;
use reqwest::header::{ACCEPT, CACHE_CONTROL};
#[cfg(any(feature = "introspection", feature = "outgoing"))]
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::redirect::Policy;
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use rustls::crypto::ring;
use rustls::pki_types::CertificateDer;

use super::config::RemoteJwks;
use super::discovery::checked_url;
use super::error::RemoteError;

/// The most redirects followed; an identity provider needs one or two at most.
const MAX_REDIRECTS: usize = 3;

/// A fetched document and its `Cache-Control` header.
pub(super) struct Fetched {
    pub(super) body: Vec<u8>,
    pub(super) cache_control: Option<String>,
}

/// A client for one remote source: its timeouts, its roots, redirects that never leave
/// https once there.
pub(super) fn client(config: &RemoteJwks, https_only: bool) -> Result<Client, RemoteError> {
    client_with(
        &HttpSettings {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            allow_plain_http: config.allow_plain_http,
            extra_roots: &config.extra_roots,
            follow_redirects: true,
        },
        https_only,
    )
}

/// What a client is built from, for the crate's other HTTP callers (introspection).
pub(crate) struct HttpSettings<'a> {
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) allow_plain_http: bool,
    pub(crate) extra_roots: &'a [Vec<u8>],
    /// Whether redirects are followed (within [`redirects`]' rules) or answered as they are.
    pub(crate) follow_redirects: bool,
}

/// [`client`] from its parts.
///
/// A client that may speak plain http (`https_only` false: a loopback endpoint, or one the
/// configuration allowed) never goes through a proxy from the environment (`HTTP_PROXY`,
/// `ALL_PROXY`): the proxy would read the request in the clear (a client secret, a token)
/// and could answer it (forged keys). Through an https-only client a proxy only tunnels
/// (`CONNECT`) to the server it must authenticate, so corporate proxies keep working.
pub(crate) fn client_with(
    settings: &HttpSettings<'_>,
    https_only: bool,
) -> Result<Client, RemoteError> {
    let builder = if https_only {
        Client::builder()
    } else {
        Client::builder().no_proxy()
    };
    builder
        .tls_backend_preconfigured(tls_config(settings.extra_roots)?)
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .redirect(if settings.follow_redirects {
            redirects(settings.allow_plain_http)
        } else {
            Policy::none()
        })
        .https_only(https_only)
        .user_agent(concat!("meshguard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RemoteError::Tls(e.to_string()))
}

/// Follows at most [`MAX_REDIRECTS`] redirects, each to a URL the configuration itself
/// could have named: the rules of [`checked_url`] (https, plain http only to loopback unless
/// allowed, no credentials) are applied to every target before it is contacted, or a
/// loopback `http://` source could hand the fetch to any host in the clear.
fn redirects(allow_plain_http: bool) -> Policy {
    Policy::custom(move |attempt| {
        // `previous` holds the URLs already requested, the configured one first.
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match checked_url(attempt.url().as_str(), allow_plain_http) {
            Ok(_) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

/// rustls on ring (the crate's one crypto library), verifying servers against the operating
/// system's roots plus the configured ones.
fn tls_config(extra_roots: &[Vec<u8>]) -> Result<rustls::ClientConfig, RemoteError> {
    let provider = Arc::new(ring::default_provider());
    let roots: Vec<CertificateDer<'static>> = extra_roots
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| RemoteError::Tls(e.to_string()))?;
    match rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider) {
        Ok(verifier) => Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()),
        // A host without any CA bundle can still fetch over loopback HTTP; every https
        // handshake then fails closed for want of a root.
        Err(_) if extra_roots.is_empty() => Ok(builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()),
        Err(e) => Err(RemoteError::Tls(e.to_string())),
    }
}

/// GETs `url`, accepting only 200 and at most `limit` body bytes.
///
/// A request whose connection fails before any answer (refused, reset, or closed unanswered)
/// is sent once more at once, on a new connection: an identity provider that restarted
/// leaves the client a kept-alive connection that is dead, and without the second attempt
/// that one stale socket would cost a refresh and the whole wait before the next. Nothing
/// else is retried: an HTTP status, a timeout or a bad document would only fail again, and a
/// connection that broke after the answer began may have been served.
pub(super) async fn get(client: &Client, url: &Url, limit: usize) -> Result<Fetched, RemoteError> {
    let response = send(url, || {
        client.get(url.clone()).header(ACCEPT, "application/json")
    })
    .await?;
    let cache_control = response
        .headers()
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let body = read_body(response, url, limit).await?;
    Ok(Fetched {
        body,
        cache_control: (!cache_control.is_empty()).then_some(cache_control),
    })
}

/// POSTs the `application/x-www-form-urlencoded` `form` to `url` with an optional
/// `Authorization` value, accepting only 200 and at most `limit` body bytes. A connection
/// failing before any answer is retried once, as for [`get`]: the request only reads.
#[cfg(feature = "introspection")]
pub(crate) async fn post_form(
    client: &Client,
    url: &Url,
    form: &str,
    authorization: Option<&str>,
    limit: usize,
) -> Result<Vec<u8>, RemoteError> {
    let response = send(url, || form_request(client, url, form, authorization)).await?;
    read_body(response, url, limit).await
}

/// An answer of any status to [`post_form_answer`].
#[cfg(feature = "outgoing")]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The `Retry-After` header, when there is exactly one readable value.
    pub(crate) retry_after: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// As [`post_form`], but any status is answered with its (bounded) body: a token endpoint
/// explains a refusal in a 400's JSON body (RFC 6749 §5.2), and a 429 or 503 says when to
/// come back. Redirects are whatever the client does with them; the token endpoint's client
/// follows none, since a 307 or 308 would resend the secret.
#[cfg(feature = "outgoing")]
pub(crate) async fn post_form_answer(
    client: &Client,
    url: &Url,
    form: &str,
    authorization: Option<&str>,
    limit: usize,
) -> Result<Answer, RemoteError> {
    let response = send_once_more(url, || form_request(client, url, form, authorization)).await?;
    let status = response.status().as_u16();
    let mut values = response.headers().get_all(RETRY_AFTER).iter();
    let retry_after = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok().map(str::to_owned),
        _ => None,
    };
    let body = read_body(response, url, limit).await?;
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

#[cfg(any(feature = "introspection", feature = "outgoing"))]
fn form_request(
    client: &Client,
    url: &Url,
    form: &str,
    authorization: Option<&str>,
) -> RequestBuilder {
    let request = client
        .post(url.clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form.to_owned());
    match authorization {
        Some(value) => request.header(AUTHORIZATION, value),
        None => request,
    }
}

/// Sends the request `build` makes, once more on a new connection when the first failed
/// before any answer (see [`get`]), and accepts only a 200.
async fn send(url: &Url, build: impl Fn() -> RequestBuilder) -> Result<Response, RemoteError> {
    let response = send_once_more(url, build).await?;
    if response.status() != StatusCode::OK {
        return Err(RemoteError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    Ok(response)
}

/// Sends the request `build` makes, once more on a new connection when the first failed
/// before any answer (see [`get`]); any status is an answer.
async fn send_once_more(
    url: &Url,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response, RemoteError> {
    let sent = match build().send().await {
        Err(error) if is_connection_failure(&error) => {
            tracing::debug!(%url, "connection failed before an answer, trying a new one: {error}");
            build().send().await
        }
        sent => sent,
    };
    sent.map_err(|e| failure(url, &e))
}

/// The body, refused as soon as it is announced or grows past `limit` bytes.
async fn read_body(
    mut response: Response,
    url: &Url,
    limit: usize,
) -> Result<Vec<u8>, RemoteError> {
    let too_large = || RemoteError::TooLarge {
        url: url.to_string(),
        limit,
    };
    let announced = response.content_length().unwrap_or(0);
    if usize::try_from(announced).map_or(true, |announced| announced > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|e| failure(url, &e))? {
        if chunk.len() > limit.saturating_sub(body.len()) {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether `error` is a connection failing before any answer: connecting refused or reset,
/// or a connection closed or reset while the request was out. A timeout, a TLS refusal
/// (a certificate, say) or anything the server said is not.
fn is_connection_failure(error: &reqwest::Error) -> bool {
    if error.is_timeout() || error.is_status() || error.is_redirect() || error.is_body() {
        return false;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::NotConnected
            );
        }
        if let Some(http) = cause.downcast_ref::<hyper::Error>() {
            // Closed unanswered: hyper reports it with no I/O error beneath.
            if http.is_incomplete_message() {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

fn failure(url: &Url, error: &reqwest::Error) -> RemoteError {
    if error.is_timeout() {
        return RemoteError::Timeout(url.to_string());
    }
    // A redirect target refused by `redirects`: report it as that URL's own refusal.
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<RemoteError>() {
            return refused.clone();
        }
        source = cause.source();
    }
    // reqwest's own message repeats the URL and says little ("error sending request"); the
    // causes say what happened (refused, reset, certificate).
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let why = if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    };
    RemoteError::Transport {
        url: url.to_string(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_that_are_not_certificates_are_refused() {
        let config =
            RemoteJwks::url("https://idp.example/jwks").add_root_certificate(vec![1, 2, 3]);
        assert_eq!(client(&config, true).unwrap_err().reason(), "tls_setup");
    }

    #[test]
    fn default_client_builds_on_ring() {
        assert!(client(&RemoteJwks::url("https://idp.example/jwks"), true).is_ok());
    }
}
