//! Credentials on the requests a service makes to other services: the inbound user's bearer
//! token forwarded, this service's own OAuth 2.0 client-credentials token, or an RFC 8693
//! token exchange; cached, renewed before expiry, and never sent in the clear beyond
//! loopback.
//!
//! Build a [`TokenSource`] ([`ClientCredentials`]) or a [`TokenExchanger`]
//! ([`TokenExchange`]) once, then either put an [`OutgoingCredentialsLayer`] around a tower
//! client (tonic's `Channel`, hyper-util's client) or ask for the header yourself
//! ([`TokenSource::authorization`], for reqwest). To pass the user's token on, take an
//! [`InboundBearer`] from the request being served (meshguard's guard must have verified
//! it) and insert it into the extensions of each outgoing request made for it.
//!
//! | behaviour | how |
//! | --- | --- |
//! | warm path | the cached token's prebuilt header, loaded without a lock |
//! | renewal | in the last tenth of the token's life (5 to 60 s, counted from when it was asked for), in the background, one request at a time; requests keep using the current token; an exchanged token ending with its subject's `exp` is not renewed |
//! | no usable token | callers wait for the one request in flight, up to [`DEFAULT_WAIT`] |
//! | failures | back-off doubling from 1 s to 60 s, longer when `Retry-After` asks; the call fails, it is never sent without credentials |
//! | token endpoint | `https://` (or `http://` to loopback), redirects never followed, answers bounded to [`MAX_TOKEN_RESPONSE_BYTES`] and read strictly |
//! | destinations | the layer's one origin, `https://` or `http://` to loopback; path-only URIs (tonic's) only with [`OutgoingCredentialsLayer::trust_inner_origin`] |
//! | refused | DPoP-bound tokens, inbound (`DPoP` scheme, `cnf.jkt`) or issued (`token_type` `DPoP`) |
//!
//! Tokens are fetched on the tokio runtime the caller runs on, which needs its time driver
//! (as reqwest does): a request that finds no usable token outside one fails with
//! [`OutgoingError::NoRuntime`].
//!
//! # Example
//!
//! ```
//! use meshguard::outgoing::{
//!     ClientAuth, ClientCredentials, Credentials, OutgoingCredentialsLayer,
//! };
//! use tower_layer::Layer;
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let source = ClientCredentials::new(
//!     "https://idp.example/oauth2/token",
//!     ClientAuth::basic("orders", "the-client-secret"),
//! )
//! .resource("https://payments.internal")
//! .scope("payments:write")
//! .build()?;
//! let layer = OutgoingCredentialsLayer::new(
//!     Credentials::client_credentials(source),
//!     "https://payments.internal:8443",
//! )?;
//! // With tonic, whose `Channel` adds its endpoint's origin to path-only requests, once
//! // you have checked the channel connects to that origin over TLS:
//! // `PaymentsClient::new(layer.trust_inner_origin().layer(channel))`.
//! # let _ = layer;
//! // Plain HTTP to anything but loopback is refused when the layer is built.
//! # let source = ClientCredentials::new("https://idp.example/token", ClientAuth::post("a", "b")).build()?;
//! let refused = OutgoingCredentialsLayer::new(
//!     Credentials::client_credentials(source),
//!     "http://payments.internal",
//! );
//! assert_eq!(refused.unwrap_err().reason(), "invalid_origin");
//! # Ok(())
//! # }
//! # run().unwrap();
//! ```
//!
//! Forwarding the user's token from an axum handler behind meshguard's guard:
//!
//! ```no_run
//! use axum::extract::Request;
//! use meshguard::outgoing::InboundBearer;
//!
//! async fn handler(inbound: Request) -> Result<String, String> {
//!     let bearer = InboundBearer::from_request(&inbound).map_err(|e| e.reason().to_owned())?;
//!     let mut outgoing = http::Request::get("/payments").body(String::new()).unwrap();
//!     outgoing.extensions_mut().insert(bearer);
//!     // ... send `outgoing` through a client wrapped in
//!     // `OutgoingCredentialsLayer::new(Credentials::forward(), "https://payments.internal")`.
//!     Ok(String::new())
//! }
//! ```

mod cell;
mod client_credentials;
mod config;
mod destination;
mod endpoint;
mod error;
mod exchange;
mod inbound;
mod layer;
mod response;

pub use crate::token::client_auth::ClientAuth;
pub use client_credentials::{ClientCredentials, TokenSource};
pub use config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_WAIT};
pub use error::{OutgoingBuilderError, OutgoingError};
pub use exchange::{ACCESS_TOKEN_TYPE, DEFAULT_EXCHANGE_CACHE, TokenExchange, TokenExchanger};
pub use inbound::InboundBearer;
pub use layer::{
    BoxError, Credentials, OutgoingCredentials, OutgoingCredentialsLayer, ResponseFuture,
};
pub use response::{IssuedToken, MAX_TOKEN_RESPONSE_BYTES, read_token_response};
