//! [`SvidConnector`]: TCP then TLS with [`svid_client_config`], as a connector for tonic's
//! `Endpoint::connect_with_connector` (tonic's own TLS settings cannot take a rustls
//! config, so they can neither present a rotating SVID nor authorize by SPIFFE ID).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::super::authorize::Authorizer;
use super::super::tls::TlsConfigError;
use super::client::svid_client_config;
use super::store::SvidStore;

/// Opens mTLS connections with the current SVID of an [`SvidStore`], for tonic `Channel`s
/// (and other HTTP/2 clients on hyper): a `tower` service from the URI to dial to the
/// connected stream.
///
/// The TLS is [`svid_client_config`] with ALPN `h2`: the server must present an X509-SVID
/// that chains to the current bundle of its trust domain and that the [`Authorizer`]
/// accepts; the name in the URI is only dialled (and sent as SNI). The URI needs an
/// explicit port.
///
/// Give tonic an `http://` URI: this connector does the TLS, and tonic (with its TLS
/// support built in, as meshguard's `rustls` feature does) refuses an `https://` URI it
/// has no TLS settings for. For `:scheme https` on the wire, set `Endpoint::origin`.
///
/// # Example
///
/// ```no_run
/// use meshguard::peer::{Authorizer, SvidConnector, SvidStore};
/// use tonic::transport::Endpoint;
///
/// # async fn call(store: SvidStore) -> Result<(), Box<dyn std::error::Error>> {
/// let payments = Authorizer::id("spiffe://example.org/ns/shop/sa/payments".parse()?);
/// let channel = Endpoint::from_static("http://payments.shop:8443")
///     .origin("https://payments.shop:8443".parse()?)
///     .connect_with_connector(SvidConnector::new(&store, payments)?)
///     .await?;
/// # let _ = channel;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SvidConnector {
    tls: TlsConnector,
}

/// The connection future of [`SvidConnector`]: one per connection, not per request, so it
/// is boxed.
pub type SvidConnecting =
    Pin<Box<dyn Future<Output = io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>>;

impl SvidConnector {
    /// Connects with the current SVID of `store`, to servers `authorizer` accepts.
    ///
    /// # Errors
    ///
    /// As [`svid_client_config`].
    pub fn new(store: &SvidStore, authorizer: Authorizer) -> Result<Self, TlsConfigError> {
        let mut config = svid_client_config(store, authorizer)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The rustls configuration connections are made with.
    pub fn config(&self) -> &Arc<ClientConfig> {
        self.tls.config()
    }
}

impl tower_service::Service<Uri> for SvidConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = SvidConnecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let (host, port) = host_and_port(&uri)?;
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tcp = TcpStream::connect((host, port)).await?;
            // gRPC sends small frames both ways; Nagle's algorithm would hold them back.
            tcp.set_nodelay(true)?;
            let stream = tls.connect(name, tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

impl fmt::Debug for SvidConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvidConnector").finish_non_exhaustive()
    }
}

/// The host (an IPv6 address without its brackets) and the explicit port of `uri`.
fn host_and_port(uri: &Uri) -> io::Result<(&str, u16)> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    let host = uri.host().ok_or_else(|| invalid("the URI has no host"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = uri
        .port_u16()
        .ok_or_else(|| invalid("the URI has no port"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::host_and_port;

    #[test]
    fn the_uri_gives_host_and_explicit_port() {
        let uri = "http://payments.shop:8443/x".parse().unwrap();
        assert_eq!(host_and_port(&uri).unwrap(), ("payments.shop", 8443));
        let uri = "http://[::1]:50051".parse().unwrap();
        assert_eq!(host_and_port(&uri).unwrap(), ("::1", 50051));
        let uri = "http://payments.shop".parse().unwrap();
        assert_eq!(
            host_and_port(&uri).unwrap_err().to_string(),
            "the URI has no port"
        );
    }
}
