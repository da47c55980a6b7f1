//! What every token-endpoint grant is configured with: the endpoint, the client's
//! authentication, the extra parameters, timeouts and roots.

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::endpoint::EndpointConfig;
use crate::token::client_auth::{ClientAuth, encode_into};
use crate::token::{Clock, SystemClock};

/// How long connecting to the token endpoint may take: 2 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one token request may take in all: 5 seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an outgoing request waits for a token when none is usable: 10 seconds.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The parts shared by [`ClientCredentials`](super::ClientCredentials) and
/// [`TokenExchange`](super::TokenExchange).
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub(crate) endpoint: EndpointConfig,
    scopes: Vec<String>,
    audiences: Vec<String>,
    resources: Vec<String>,
    pub(crate) wait: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Grant {
    pub(crate) fn new(endpoint: String, auth: ClientAuth) -> Self {
        Grant {
            endpoint: EndpointConfig {
                endpoint,
                auth,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                extra_roots: Vec::new(),
            },
            scopes: Vec::new(),
            audiences: Vec::new(),
            resources: Vec::new(),
            wait: DEFAULT_WAIT,
            clock: Arc::new(SystemClock),
        }
    }

    pub(crate) fn scope(&mut self, scope: String) {
        self.scopes.push(scope);
    }

    pub(crate) fn audience(&mut self, audience: String) {
        self.audiences.push(audience);
    }

    pub(crate) fn resource(&mut self, resource: String) {
        self.resources.push(resource);
    }

    /// `grant_type` and the configured `scope`, `resource` and `audience` parameters, as a
    /// form body with room for the rest.
    pub(crate) fn form(&self, grant_type: &str, extra: usize) -> Zeroizing<String> {
        let mut form = Zeroizing::new(String::with_capacity(128 + extra));
        form.push_str("grant_type=");
        encode_into(grant_type, &mut form);
        if !self.scopes.is_empty() {
            // RFC 6749 §3.3: one parameter, space-delimited.
            form.push_str("&scope=");
            encode_into(&self.scopes.join(" "), &mut form);
        }
        for (name, values) in [("resource", &self.resources), ("audience", &self.audiences)] {
            for value in values {
                form.push('&');
                form.push_str(name);
                form.push('=');
                encode_into(value, &mut form);
            }
        }
        form
    }
}

/// The builder methods both grants share, written once.
macro_rules! grant_methods {
    ($builder:ident) => {
        impl $builder {
            /// Asks for `scope` (RFC 6749 §3.3); call again for more, sent space-delimited.
            pub fn scope(mut self, scope: impl Into<String>) -> Self {
                self.grant.scope(scope.into());
                self
            }

            /// Names the service the token is for with `audience` (RFC 8693 §2.1; accepted
            /// by several providers for client credentials too); call again for more.
            pub fn audience(mut self, audience: impl Into<String>) -> Self {
                self.grant.audience(audience.into());
                self
            }

            /// Names the resource the token is for with `resource` (RFC 8707), an absolute
            /// URI; call again for more.
            pub fn resource(mut self, resource: impl Into<String>) -> Self {
                self.grant.resource(resource.into());
                self
            }

            /// How long connecting to the endpoint may take. Defaults to
            /// [`DEFAULT_CONNECT_TIMEOUT`](crate::outgoing::DEFAULT_CONNECT_TIMEOUT).
            pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.grant.endpoint.connect_timeout = timeout;
                self
            }

            /// How long one token request may take in all. Defaults to
            /// [`DEFAULT_REQUEST_TIMEOUT`](crate::outgoing::DEFAULT_REQUEST_TIMEOUT).
            pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.grant.endpoint.request_timeout = timeout;
                self
            }

            /// How long an outgoing request waits for a token when none is usable; it then
            /// fails with [`OutgoingError::Timeout`](crate::outgoing::OutgoingError::Timeout).
            /// Defaults to [`DEFAULT_WAIT`](crate::outgoing::DEFAULT_WAIT).
            pub fn wait(mut self, wait: std::time::Duration) -> Self {
                self.grant.wait = wait;
                self
            }

            /// Trusts `der` (a DER certificate) as a root for the token endpoint, besides
            /// the system's.
            pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
                self.grant.endpoint.extra_roots.push(der.into());
                self
            }

            /// The clock deciding when a token is renewed and when it expired. Defaults to
            /// the system clock.
            pub fn clock(mut self, clock: std::sync::Arc<dyn crate::token::Clock>) -> Self {
                self.grant.clock = clock;
                self
            }
        }
    };
}

pub(crate) use grant_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_every_parameter_once_encoded() {
        let mut grant = Grant::new("https://idp/token".into(), ClientAuth::basic("c", "s"));
        grant.scope("read".into());
        grant.scope("write all".into());
        grant.resource("https://api.test/a?b".into());
        grant.audience("payments".into());
        assert_eq!(
            grant.form("client_credentials", 0).as_str(),
            "grant_type=client_credentials&scope=read+write+all\
             &resource=https%3A%2F%2Fapi.test%2Fa%3Fb&audience=payments"
        );
    }
}
